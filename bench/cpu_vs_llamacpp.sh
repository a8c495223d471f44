#!/usr/bin/env bash
# Same-session CPU comparison with llama.cpp (issues 2 and 7): prefill (pp512) and decode from an
# empty context (tg128), petrel and llama-bench back to back, 2 threads, Qwen3-0.6B shape.
# llama.cpp is built by hand outside this repository; its GGUFs are made with its own tools
# (gguf-py for the random F16 file, llama-quantize for Q8_0 / Q4_0 / Q4_0 --pure).
#
#   LLAMA_BENCH=/path/to/llama-bench PEER_DIR=/path/with/ggufs PETREL=build/bin/petrel \
#     bash bench/cpu_vs_llamacpp.sh [pp] [tg] [pairs]
# PEER_DIR holds qwen3-0.6b-f16.gguf, q8.gguf, q4.gguf, q4pure.gguf (and for `pairs` with PAIR_FILE
# q41.gguf / q41pure.gguf: llama-quantize [--pure] ... Q4_1).
set -u
P=${PETREL:-build/bin/petrel}
LB=${LLAMA_BENCH:?set LLAMA_BENCH to the llama-bench binary of llama.cpp}
D=${PEER_DIR:?set PEER_DIR to the directory of the peer GGUFs}
M=bench/models/qwen3-0.6b
pp() { echo "  petrel pp512 $*: $($P bench "$@" --threads 2 --prompt-tokens 512 --gen-tokens 16 --json 2>&1 | tail -1)"; }
tg() { echo "  petrel tg128 $*: $($P bench "$@" --threads 2 --prompt-tokens 1 --gen-tokens 128 --json 2>&1 | tail -1)"; }
lb() { $LB -m "$1" -t 2 "${@:2}" 2>&1 | grep -E "pp512|tg128" | sed 's/^/  llama.cpp /'; }
echo "load $(cut -d' ' -f1-3 /proc/loadavg), petrel $(git rev-parse --short HEAD 2>/dev/null)"
for what in "${@:-pp tg}"; do
  case $what in
    pp)
      lb "$D/qwen3-0.6b-f16.gguf" -p 512 -n 0 -r 3; pp $M --load-format dummy
      lb "$D/q8.gguf" -p 512 -n 0 -r 3; pp $M --load-format dummy --quant int8
      lb "$D/q4.gguf" -p 512 -n 0 -r 3; pp $M --load-format dummy --quant q4_0 ;;
    tg)  # pairs back to back: the VM's memory bandwidth drifts
      for round in 1 2; do
        # llama.cpp keeps its KV cache in f16 by default; petrel's CPU default is f32, so each
        # type also runs with a 2-byte (bf16) cache, like for like.
        lb "$D/qwen3-0.6b-f16.gguf" -p 0 -n 128 -r 3; tg $M --load-format dummy; tg "$D/qwen3-0.6b-f16.gguf"
        tg $M --load-format dummy --kv-cache-dtype bf16
        lb "$D/q8.gguf" -p 0 -n 128 -r 3; tg "$D/q8.gguf"; tg $M --load-format dummy --quant int8
        tg "$D/q8.gguf" --kv-cache-dtype bf16
        lb "$D/q4.gguf" -p 0 -n 128 -r 3; tg $M --load-format dummy --quant q4_0
        lb "$D/q4pure.gguf" -p 0 -n 128 -r 3; tg "$D/q4pure.gguf"; tg $M --load-format dummy --quant q4_0:pure
        tg "$D/q4pure.gguf" --kv-cache-dtype bf16
      done ;;
    pairs)  # N alternating pairs (PAIRS, default 6) on one file (PAIR_FILE in PEER_DIR, default the
            # Q4_0 --pure one): llama-bench -r 3, then petrel on the same file with a bf16 cache
            # (like llama.cpp's f16 one); the ratio of each pair. PETREL_ARGS replaces petrel's model
            # (e.g. "bench/models/qwen3-0.6b --load-format dummy --quant int4" against q41.gguf).
      f=$D/${PAIR_FILE:-q4pure.gguf}
      echo "  $f vs petrel ${PETREL_ARGS:-$f}"
      for i in $(seq "${PAIRS:-6}"); do
        l=$($LB -m "$f" -t 2 -p 0 -n 128 -r 3 2>&1 | grep tg128 | awk -F'|' '{print $(NF-1)}' | awk '{print $1}')
        # shellcheck disable=SC2086
        p=$($P bench ${PETREL_ARGS:-$f} --threads 2 --prompt-tokens 1 --gen-tokens 128 --kv-cache-dtype bf16 --json 2>&1 | tail -1 |
            python3 -c 'import json,sys; print(round(json.load(sys.stdin)["decode_tok_s"], 2))')
        echo "  pair $i: llama.cpp $l tok/s, petrel $p tok/s, ratio $(python3 -c "print(round($p / $l, 2))")"
      done ;;
  esac
done
