#!/usr/bin/env bash
# One device call for GPU serving (issue 8): the gpu tests of device sampling and LoRA, then
# `petrel serve --device cuda` on the Qwen3-0.6B shape (dummy weights, the qwen3-tiny tokenizer,
# same vocabulary) driven by bench/load/load.py, a LoRA request on the GPU, and the start-up error
# when the KV cache cannot fit. Run from the repository root on the device machine with the
# binaries of a -DPETREL_CUDA=ON build in BIN; logs go to $OUT.
#
#   BIN=dir bash bench/load/device_serve.sh [tests] [load] [load-host] [lora] [errors]
set -uo pipefail
BIN=${BIN:-build-cuda/bin}
OUT=${OUT:-/tmp/out}
PORT=${PORT:-18500}
LEVELS=${LEVELS:-1,64,256}
SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-40}
REQUESTS_PER_CLIENT=${REQUESTS_PER_CLIENT:-8}  # requests per level: concurrency x this, at least 64
mkdir -p "$OUT"
# The tests find their fixtures through the source path compiled in (/work/main/tests/fixtures).
mkdir -p /work && { [ -e /work/main ] || ln -s "$PWD" /work/main; }
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
      for t in cuda_sampler_test cuda_lora_golden_test runtime_test; do
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
    errors)
      timeout 120 "$BIN/petrel" serve bench/models/qwen3-0.6b --load-format dummy --device cuda \
        --tokenizer tests/fixtures/qwen3-tiny --port "$PORT" --gpu-memory-utilization 0.02 2>&1 | tail -2
      echo "exit ${PIPESTATUS[0]}"
      ;;
  esac
done
