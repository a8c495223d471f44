#!/usr/bin/env python3
"""Reference dequantizations of GGUF block types from llama.cpp's own Python package (gguf-py).

For each of Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K this writes a few blocks of raw bytes and the
float32 values gguf-py's numpy dequantizer (gguf/quants.py, llama.cpp's published block
definitions) gives for them. Blocks come from two sources:
  - random raw bytes with sane fp16 scale fields (every code, every high bit, every 6-bit scale
    packing is exercised; K-quants have no numpy quantizer, so this is their only source);
  - gguf-py's quantizer applied to random normal floats (types that have one).
tests/unit/formats/gguf_quant_refs_test.cc checks petrel's DequantizeGguf() against the values bit
for bit. gguf-py itself is neither copied nor committed: pass the path of a llama.cpp checkout's
gguf-py directory.

  python3 tools/gen_gguf_quant_refs.py /path/to/llama.cpp/gguf-py \
      -o tests/unit/formats/gguf_quant_refs.json
"""

import argparse
import json
import sys

import numpy as np

TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]
# Byte offsets of the fp16 scale fields in one block (d, and m / dmin where present).
FP16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}
RAW_BLOCKS = 3
QUANTIZED_BLOCKS = 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gguf_py", help="path of llama.cpp's gguf-py directory")
    ap.add_argument("-o", "--output", default="tests/unit/formats/gguf_quant_refs.json")
    ap.add_argument("--seed", type=int, default=20261126)
    args = ap.parse_args()
    sys.path.insert(0, args.gguf_py)
    from gguf import quants  # noqa: E402
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType  # noqa: E402

    rng = np.random.default_rng(args.seed)
    cases = []
    for name in TYPES:
        qt = GGMLQuantizationType[name]
        block, size = GGML_QUANT_SIZES[qt]
        raw = rng.integers(0, 256, size=(RAW_BLOCKS, size), dtype=np.uint8)
        for b in range(RAW_BLOCKS):
            for off in FP16_FIELDS[name]:
                h = np.array([rng.uniform(-0.05, 0.05)], dtype=np.float16)
                raw[b, off:off + 2] = h.view(np.uint8)
        blobs = [raw.reshape(-1)]
        try:
            x = (rng.standard_normal(QUANTIZED_BLOCKS * block) * 0.7).astype(np.float32)
            blobs.append(np.asarray(quants.quantize(x.reshape(1, -1), qt), dtype=np.uint8).reshape(-1))
        except NotImplementedError:
            pass
        data = np.concatenate(blobs)
        n_blocks = data.size // size
        values = np.asarray(quants.dequantize(data.reshape(1, -1), qt), dtype=np.float32).reshape(-1)
        assert values.size == n_blocks * block
        assert np.all(np.isfinite(values))
        cases.append({
            "type": name,
            "ggml_type": int(qt),
            "blocks": int(n_blocks),
            "raw_hex": data.tobytes().hex(),
            "values_f32le_hex": values.astype("<f4").tobytes().hex(),
        })
        print(f"{name}: {n_blocks} blocks", file=sys.stderr)
    version = "(version unknown)"
    try:
        with open(args.gguf_py.rstrip("/") + "/pyproject.toml") as f:
            version = next(line.split("=")[1].strip().strip('"') for line in f
                           if line.startswith("version"))
    except (OSError, StopIteration):
        pass
    out = {
        "generator": "tools/gen_gguf_quant_refs.py",
        "source": "llama.cpp gguf-py " + version +
                  ", gguf/quants.py dequantize()",
        "seed": args.seed,
        "cases": cases,
    }
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
