#!/usr/bin/env bash
# One device call for GPU serving (issue 8): the gpu tests of device sampling and LoRA, then
# `petrel serve --device cuda` on the Qwen3-0.6B shape (dummy weights, the qwen3-tiny tokenizer,
# same vocabulary) driven by bench/load/load.py, a LoRA request on the GPU, and the start-up error
# when the KV cache cannot fit. Run from the repository root on the device machine with the
# binaries of a -DPETREL_CUDA=ON build in BIN; logs go to $OUT.
#
#   BIN=dir bash bench/load/device_serve.sh [tests] [load] [load-host] [greedy] [lora] [mixed] [errors]
#   (greedy: temperature 0 with pipelined decoding on - the default - and off, the same greedy
#    completion compared between the two, and the server's pipelined-step counter)
set -uo pipefail
BIN=${BIN:-build-cuda/bin}
OUT=${OUT:-/tmp/out}
PORT=${PORT:-18500}
LEVELS=${LEVELS:-1,64,256}
SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-40}
REQUESTS_PER_CLIENT=${REQUESTS_PER_CLIENT:-8}  # requests per level: concurrency x this, at least 64
mkdir -p "$OUT"
# The tests find their fixtures through the source path compiled in (PETREL_FIXTURES): set
# BUILT_AT to the checkout path the binaries were built in, and it is linked to this checkout.
if [ -n "${BUILT_AT:-}" ]; then
  mkdir -p "$(dirname "$BUILT_AT")" && { [ -e "$BUILT_AT" ] || ln -s "$PWD" "$BUILT_AT"; }
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader

wait_ready() {  # log file; waits for the "ready" line (or the server's exit)
  for _ in $(seq 1 240); do
    grep -q "ready on" "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}

for phase in "$@"; do
  echo "=== $phase"
  case $phase in
    tests)
      for t in cuda_sampler_test cuda_engine_test cuda_lora_golden_test runtime_test; do
        [ -x "$BIN/$t" ] || continue
        "$BIN/$t" 2>&1 | tee "$OUT/$t.log" | grep -E "^\[  (PASSED|FAILED) |FAILED|Failure|survivors|max \|logit" | head -40
      done
      ;;
    load|load-host)
      # load-host: the same with PETREL_HOST_SAMPLING=1 (logits to the host, host sampler).
      tag=$phase
      if [ "$phase" = load-host ]; then export PETREL_HOST_SAMPLING=1; else unset PETREL_HOST_SAMPLING; fi
      "$BIN/petrel" serve bench/models/qwen3-0.6b --load-format dummy --device cuda \
        --tokenizer tests/fixtures/qwen3-tiny --port "$PORT" --max-num-seqs 256 \
        > "$OUT/serve-$tag.log" 2>&1 &
      pid=$!
      if wait_ready "$OUT/serve-$tag.log" $pid; then
        grep -E "KV cache|KV pool|CUDA backend" "$OUT/serve-$tag.log"
        for levels in ${LEVELS//,/ }; do
          python3 bench/load/load.py --base "http://127.0.0.1:$PORT" --concurrency "$levels" \
            --max-tokens 64 --seconds "$SECONDS_PER_LEVEL" --requests $((levels * REQUESTS_PER_CLIENT > 64 ? levels * REQUESTS_PER_CLIENT : 64)) \
            --json "$OUT/load-$tag-$levels.json" | tail -n +$([ "$levels" = "${LEVELS%%,*}" ] && echo 1 || echo 3)
        done
        nvidia-smi --query-gpu=memory.used --format=csv,noheader
      else
        echo "server did not start"; tail -20 "$OUT/serve-$tag.log"
      fi
      kill $pid 2>/dev/null; wait $pid 2>/dev/null
      unset PETREL_HOST_SAMPLING
      ;;
    greedy)
      for mode in auto off; do
        PETREL_PIPELINE_DECODE=$mode "$BIN/petrel" serve bench/models/qwen3-0.6b --load-format dummy \
          --device cuda --tokenizer tests/fixtures/qwen3-tiny --port "$PORT" --max-num-seqs 256 \
          > "$OUT/serve-greedy-$mode.log" 2>&1 &
        pid=$!
        if wait_ready "$OUT/serve-greedy-$mode.log" $pid; then
          curl -s "http://127.0.0.1:$PORT/v1/completions" -H 'content-type: application/json' \
            -d '{"prompt":"The storm petrel","max_tokens":48,"temperature":0,"ignore_eos":true}' \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])' > "$OUT/greedy-$mode.txt"
          for levels in ${LEVELS//,/ }; do
            echo "[pipeline $mode]"
            python3 bench/load/load.py --base "http://127.0.0.1:$PORT" --concurrency "$levels" \
              --max-tokens "${GREEDY_TOKENS:-256}" --temperature 0 --seconds "$SECONDS_PER_LEVEL" \
              --requests $((levels * REQUESTS_PER_CLIENT > 16 ? levels * REQUESTS_PER_CLIENT : 16)) \
              --json "$OUT/load-greedy-$mode-$levels.json" | tail -n 1
          done
          curl -s "http://127.0.0.1:$PORT/metrics" | grep "^petrel:pipelined_decode_steps_total"
        else
          echo "server did not start"; tail -20 "$OUT/serve-greedy-$mode.log"
        fi
        kill $pid 2>/dev/null; wait $pid 2>/dev/null
      done
      cmp -s "$OUT/greedy-auto.txt" "$OUT/greedy-off.txt" && echo "greedy text: pipelined == step by step" \
        || { echo "greedy text differs:"; cat "$OUT/greedy-auto.txt" "$OUT/greedy-off.txt"; }
      ;;
    lora)
      "$BIN/petrel" serve tests/fixtures/qwen3-tiny --device cuda --port "$PORT" \
        --lora-modules all=tests/fixtures/qwen3-tiny-lora-all --enable-lora-loading \
        > "$OUT/serve_lora.log" 2>&1 &
      pid=$!
      if wait_ready "$OUT/serve_lora.log" $pid; then
        for m in all qwen3-tiny all; do
          curl -s "http://127.0.0.1:$PORT/v1/completions" -H 'content-type: application/json' \
            -d "{\"model\":\"$m\",\"prompt\":\"Hello, world\",\"max_tokens\":8,\"temperature\":0,\"logprobs\":2}" \
            | python3 -c 'import json,sys; j=json.load(sys.stdin); c=j["choices"][0]; print(j["model"], repr(c["text"]), c["logprobs"]["tokens"][:3], [round(x,3) for x in c["logprobs"]["token_logprobs"][:3]])'
        done
        curl -s "http://127.0.0.1:$PORT/v1/load_lora_adapter" -H 'content-type: application/json' \
          -d '{"lora_name":"qv","lora_path":"tests/fixtures/qwen3-tiny-lora-qv"}'; echo
        curl -s "http://127.0.0.1:$PORT/v1/completions" -H 'content-type: application/json' \
          -d '{"model":"qv","prompt":"Hello","max_tokens":4,"temperature":0.8,"seed":7}' | head -c 300; echo
        curl -s "http://127.0.0.1:$PORT/v1/unload_lora_adapter" -H 'content-type: application/json' \
          -d '{"lora_name":"qv"}'; echo
      else
        echo "lora server did not start"; tail -20 "$OUT/serve_lora.log"
      fi
      kill $pid 2>/dev/null; wait $pid 2>/dev/null
      grep -E "LoRA|error" "$OUT/serve_lora.log" | head
      ;;
    mixed)
      # Device-sampled and host-sampled requests (penalties, logit bias) in the same batches.
      "$BIN/petrel" serve tests/fixtures/qwen3-tiny --device cuda --port "$PORT" \
        > "$OUT/serve_mixed.log" 2>&1 &
      pid=$!
      if wait_ready "$OUT/serve_mixed.log" $pid; then
        bodies=('"temperature":0.8,"seed":1' '"temperature":0.8,"presence_penalty":1.5,"seed":2'
                '"temperature":0,"logit_bias":{"9707":-100}' '"temperature":0.9,"top_k":20,"top_p":0.9,"min_p":0.05,"logprobs":3,"seed":3'
                '"temperature":1.0,"repetition_penalty":1.3,"frequency_penalty":0.5' '"temperature":0')
        for round in 1 2; do
          for b in "${bodies[@]}"; do
            curl -s -o /dev/null -w "%{http_code} " "http://127.0.0.1:$PORT/v1/completions" \
              -H 'content-type: application/json' -d "{\"prompt\":\"Hello there\",\"max_tokens\":48,$b}" &
          done
          wait $(jobs -p | grep -v "^$pid$") 2>/dev/null
          echo
        done
        # Same seed, same request, alone: same text twice.
        for i in 1 2; do
          curl -s "http://127.0.0.1:$PORT/v1/completions" -H 'content-type: application/json' \
            -d '{"prompt":"Hello there","max_tokens":12,"temperature":0.9,"top_p":0.9,"seed":42}' \
            | python3 -c 'import json,sys; print(repr(json.load(sys.stdin)["choices"][0]["text"]))'
        done
      else
        echo "mixed server did not start"; tail -20 "$OUT/serve_mixed.log"
      fi
      kill $pid 2>/dev/null; wait $pid 2>/dev/null
      grep -iE "error|abort" "$OUT/serve_mixed.log" | head -5
      ;;
    errors)
      timeout 120 "$BIN/petrel" serve bench/models/qwen3-0.6b --load-format dummy --device cuda \
        --tokenizer tests/fixtures/qwen3-tiny --port "$PORT" --gpu-memory-utilization 0.02 2>&1 | tail -2
      echo "exit ${PIPESTATUS[0]}"
      ;;
  esac
done
