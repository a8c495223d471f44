#!/usr/bin/env bash
# One device call for the CUDA decode work (issue 8): tests, decode benchmark, per-kernel profile.
# Run from the repository root on the device machine with the binaries of a -DPETREL_CUDA=ON build
# carried in BIN (default build-cudaperf/bin); results go to $OUT.
#
#   bash bench/cuda/device_run.sh [tests] [bench] [ab] [abbin] [ncu] [trace] [sanitize] [micro]
#   (ab: AB='PETREL_CUDA_X=0;PETREL_CUDA_Y=1' runs batch-1 decode under each variant;
#    abbin: AB_BINS='dir1 dir2 ...' (default "$BASE_BIN $BIN") alternates those builds'
#    decode_batch_bench, ROUNDS times at batch 1, then once each at the batches in AB_BATCHES)
set -uo pipefail
BIN=${BIN:-build-cudaperf/bin}
OUT=${OUT:-/tmp/out}
M=bench/models/qwen3-0.6b
mkdir -p "$OUT"
# The tests find their fixtures through the source path compiled in (PETREL_FIXTURES): set
# BUILT_AT to the checkout path the binaries were built in, and it is linked to this checkout.
if [ -n "${BUILT_AT:-}" ]; then
  mkdir -p "$(dirname "$BUILT_AT")" && { [ -e "$BUILT_AT" ] || ln -s "$PWD" "$BUILT_AT"; }
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
for phase in "$@"; do
  echo "=== $phase"
  case $phase in
    tests)
      "$BIN/cuda_kernels_test" 2>&1 | tee "$OUT/kernels_test.log" | grep -E "^\[  (PASSED|FAILED) |FAILED|Failure|error" | head -40
      "$BIN/cuda_golden_test" 2>&1 | tee "$OUT/golden_test.log" | grep -E "^\[  (PASSED|FAILED) |FAILED|Failure" | head -20
      ;;
    bench)
      for i in 1 2; do
        "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device 2>&1 | grep -v "^\[" | tail -2
      done
      PETREL_CUDA_PDL=0 "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device 2>&1 | tail -1 | sed 's/^/PDL off: /'
      for sp in ${SPLITS:-64 128}; do
        PETREL_CUDA_DECODE_SPLIT=$sp "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device 2>&1 | tail -1 | sed "s/^/split $sp: /"
      done
      for w in ${GEMV_WARPS:-8 32}; do
        PETREL_CUDA_GEMV_WARPS=$w "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device 2>&1 | tail -1 | sed "s/^/gemv warps $w: /"
      done
      PETREL_CUDA_PREFILL_MIN_BLOCKS=0 "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device --gen-tokens 16 2>&1 | tail -1 | sed 's/^/tiled prefill always: /'
      "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device --prompt-tokens 2048 --gen-tokens 32 2>&1 | tail -1 | sed 's/^/prompt 2048: /'
      PETREL_CUDA_GRAPHS=0 "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device --gen-tokens 64 2>&1 | tail -1 | sed 's/^/graphs off: /'
      "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 32,256 --argmax device 2>&1 | tail -2
      ;;
    ab)
      # Batch-1 decode under each environment variant of AB (';'-separated lists of VAR=value,
      # an empty one for the defaults), twice round, so drift shows.
      IFS=';' read -ra variants <<< "${AB:-}"
      for round in 1 2; do
        for v in "" "${variants[@]}"; do
          echo "[${v:-default}] $(env $v "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device 2>&1 | tail -1)"
        done
      done
      ;;
    abbin)
      for round in $(seq "${ROUNDS:-4}"); do
        for b in ${AB_BINS:-$BASE_BIN $BIN}; do
          echo "[$b] $("$b/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device 2>&1 | tail -1)"
        done
      done
      for b in ${AB_BINS:-$BASE_BIN $BIN}; do
        "$b/decode_batch_bench" $M --device cuda --load-format dummy --batch "${AB_BATCHES:-8,256}" --argmax device 2>&1 | grep -v "^\[" | tail -2 | sed "s|^|[$b] |"
      done
      ;;
    ncu)
      ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size,sm__cycles_elapsed.avg.per_second \
        --csv --log-file "$OUT/ncu.csv" \
        "$BIN/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device \
        --gen-tokens 1 > "$OUT/ncu_run.log" 2>&1
      python3 bench/cuda/ncu_summary.py "$OUT/ncu.csv" | tee "$OUT/ncu_summary.txt"
      ;;
    trace)
      # Kernel timeline of one replayed batch-1 decode step (context ~330): needs the binaries of
      # a -DPETREL_CUDA_TRACE=ON build in TRACE_BIN (the trace adds ~4% to a step; its records
      # another ~15%: read its durations as shares, not as speeds).
      TB=${TRACE_BIN:-build-cudatrace/bin}
      PETREL_CUDA_TRACE_STEP=${TRACE_STEP:-200} PETREL_CUDA_TRACE_FILE="$OUT/trace.csv" \
        "$TB/decode_batch_bench" $M --device cuda --load-format dummy --batch 1 --argmax device 2>&1 | tail -1
      python3 bench/cuda/trace_summary.py "$OUT/trace.csv" | tee "$OUT/trace_summary.txt"
      ;;
    sanitize)
      F=${SANITIZE_FILTER:-*}
      compute-sanitizer --tool memcheck "$BIN/cuda_kernels_test" --gtest_filter="$F" 2>&1 | grep -E "ERROR SUMMARY|PASSED|FAILED" | head -5
      compute-sanitizer --tool racecheck "$BIN/cuda_kernels_test" --gtest_filter="${RACE_FILTER:-*DecodeAttention*:*FusedHeadOps*}" 2>&1 | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED|hazard" | head -5
      ;;
    micro)
      [ -x "$BIN/cuda_micro_bench" ] && "$BIN/cuda_micro_bench" 2>&1 | tee "$OUT/micro.log"
      ;;
  esac
done
