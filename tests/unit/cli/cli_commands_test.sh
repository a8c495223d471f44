#!/usr/bin/env bash
# generate (--ids --json, --chat), chat (commands and history), logits, inspect, kv, bench, quantize
# and error exits.
# Expected ids come from tests/fixtures/refs.json (transformers greedy on qwen3-tiny).
set -u
PETREL=$1
FX=$2
MODEL=$FX/qwen3-tiny
fail=0
check() {  # check NAME CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# 1. Greedy ids from --ids equal the reference's first 8 greedy tokens for "plain".
want=$(python3 -c "import json;r=json.load(open('$FX/refs.json'));b=r['base'][0];print(','.join(str(i) for i in b['ids']));print(json.dumps([g['token'] for g in b['greedy'][:8]]))")
ids=$(echo "$want" | head -1)
exp=$(echo "$want" | tail -1 | tr -d ' ')
got=$("$PETREL" generate "$MODEL" --ids "$ids" --max-tokens 8 --temperature 0 --ignore-eos --json 2>/dev/null | tail -1 |
      python3 -c "import json,sys;print(json.dumps(json.load(sys.stdin)['ids']).replace(' ',''))")
[ "$got" = "$exp" ]; check "generate --ids --json matches transformers greedy" $?

# 2. generate --prompt tokenizes like --ids with the same ids.
got2=$("$PETREL" generate "$MODEL" --prompt "What is machine learning?" --max-tokens 8 --temperature 0 --ignore-eos --json 2>/dev/null | tail -1 |
       python3 -c "import json,sys;print(json.dumps(json.load(sys.stdin)['ids']).replace(' ',''))")
[ "$got2" = "$exp" ]; check "generate --prompt == --ids" $?

# 3. generate --chat runs through the chat template (same prompt ids as refs chat_cases single_user).
"$PETREL" generate "$MODEL" --chat --prompt "What is diabetes?" --max-tokens 3 --temperature 0 --json >/dev/null 2>&1
check "generate --chat" $?

# 4. chat: commands, two turns, clean exit on /quit.
out=$(printf 'Hello\n/system Be brief.\nHi again\n/reset\n/quit\n' | "$PETREL" chat "$MODEL" --max-tokens 4 --temperature 0 2>&1)
echo "$out" | grep -q "system prompt set" && echo "$out" | grep -q "history cleared"; check "chat /system and /reset" $?

# 5. logits JSON has one entry per prompt position.
n=$("$PETREL" logits "$MODEL" --ids 3838,374,5662 --top-k 3 --probe-ids 1,2 2>/dev/null |
    python3 -c "import json,sys;j=json.load(sys.stdin);print(len(j['positions']), len(j['positions'][0]['top_ids']), len(j['positions'][0]['probe_logits']))")
[ "$n" = "3 3 2" ]; check "logits shape" $?

# 6. Errors: bad ids, missing model dir, unknown flag -> non-zero exit and a message.
"$PETREL" generate "$MODEL" --ids 1,x,3 >/dev/null 2>&1; [ $? -ne 0 ]; check "bad --ids is refused" $?
msg=$("$PETREL" inspect /nonexistent-model-dir 2>&1); [ $? -ne 0 ] && echo "$msg" | grep -q "config.json"; check "missing model dir names config.json" $?
"$PETREL" generate "$MODEL" --bogus 1 >/dev/null 2>&1; [ $? -eq 2 ]; check "unknown flag exits 2" $?
"$PETREL" inspect "$MODEL" | grep -q "qwen3"; check "inspect" $?

# 7. kv: Qwen3-0.6B bf16 KV is 2 x 28 x 8 x 128 x 2 = 114688 bytes per token; 4096 tokens = 448 MiB.
kv=$("$PETREL" kv "$FX/../../bench/models/qwen3-0.6b" --context 4096 --batch 1)
echo "$kv" | grep -q "= 114688 bytes" && echo "$kv" | grep -q "448.00 MiB"; check "kv table" $?

# 8. bench: the JSON summary's fields, and --op-profile's table of the decode ops (every layer's
#    attention once per token: 4 layers in the fixture).
out=$("$PETREL" bench "$MODEL" --prompt-tokens 4 --gen-tokens 3 --repeats 1 --threads 2 --no-bandwidth --op-profile --json 2>/tmp/petrel_bench_err.$$)
echo "$out" | tail -1 | python3 -c "import json,sys;j=json.loads(sys.stdin.read());assert j['decode_tok_s']>0 and j['prefill_tok_s']>0 and j['gen_tokens']==3" &&
  grep -q "decode ops, ms per token" /tmp/petrel_bench_err.$$ &&
  grep -E "^ +[0-9.]+ ms +4\.0 calls  Attention$" -q /tmp/petrel_bench_err.$$ &&
  grep -q "(between ops)" /tmp/petrel_bench_err.$$; check "bench --json --op-profile" $?
rm -f /tmp/petrel_bench_err.$$
"$PETREL" bench "$MODEL" --device cuda --op-profile >/dev/null 2>&1; [ $? -ne 0 ]; check "bench --op-profile refuses a device backend" $?

# 9. quantize writes an MLX affine model directory (config.json "quantization": bits, group_size)
#    that loads and runs: int4 -> Q4_1 blocks (embedding 8-bit -> Q8_A), int8 -> Q8_A. Its logits on
#    the packed AVX-512 kernels equal the plain kernels' (PETREL_ISA=avx2) up to f32 summation order,
#    and stay near the unquantized model's top token.
tmpq=$(mktemp -d)
for t in int4 int8; do
  "$PETREL" quantize "$MODEL" -o "$tmpq/$t" --type $t --group 64 >/dev/null 2>&1 &&
    python3 -c "import json;q=json.load(open('$tmpq/$t/config.json'))['quantization'];assert q['group_size']==64 and q['bits']==${t#int}" &&
    "$PETREL" logits "$tmpq/$t" --ids 3838,374,5662,13 --top-k 5 >"$tmpq/packed.json" 2>/dev/null &&
    PETREL_ISA=avx2 "$PETREL" logits "$tmpq/$t" --ids 3838,374,5662,13 --top-k 5 >"$tmpq/plain.json" 2>/dev/null &&
    "$PETREL" logits "$MODEL" --ids 3838,374,5662,13 --top-k 5 >"$tmpq/base.json" 2>/dev/null &&
    python3 - "$tmpq" <<'PY'
import json, sys
d = sys.argv[1]
a, b, f = (json.load(open(f"{d}/{n}.json"))["positions"] for n in ("packed", "plain", "base"))
for x, y, z in zip(a, b, f):
    assert abs(x["logsumexp"] - y["logsumexp"]) < 2e-2 * abs(y["logsumexp"]), (x["logsumexp"], y["logsumexp"])
    assert max(abs(u - v) for u, v in zip(x["top_logits"], y["top_logits"])) < 0.1, (x, y)
    assert z["top_ids"][0] in x["top_ids"], (z["top_ids"], x["top_ids"])
PY
  check "quantize --type $t: MLX layout, packed == plain kernel, near unquantized" $?
done
rm -rf "$tmpq"

exit $fail
