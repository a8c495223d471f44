"""Baseline for docs/PERFORMANCE.md: Hugging Face transformers `generate` (bf16, sdpa, greedy,
dynamic cache) on the Qwen3-0.6B shape with random weights, prompt 128, on the GPU.

    python3 bench/cuda/hf_baseline.py --batch 1:64,256:256   # batch:new_tokens pairs
Prints one line per batch: new tokens per second over the whole generate call (prefill included,
as HF's generate does it; 128-token prompts make prefill a small share).
"""
import argparse
import json
import os
import time

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--model", default=os.path.join(here, "..", "models", "qwen3-0.6b"))
    ap.add_argument("--batch", default="1:64,256:256")
    ap.add_argument("--prompt", type=int, default=128)
    args = ap.parse_args()
    cfg = AutoConfig.from_pretrained(args.model)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16,
                                                 attn_implementation="sdpa")
    model.eval()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name()}", flush=True)
    for item in args.batch.split(","):
        b, n = (int(v) for v in item.split(":"))
        ids = torch.randint(0, cfg.vocab_size, (b, args.prompt), device="cuda")
        kw = dict(do_sample=False, pad_token_id=0, eos_token_id=None,
                  attention_mask=torch.ones_like(ids))
        with torch.no_grad():
            model.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)  # warm-up
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, **kw)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
        new = (out.shape[1] - args.prompt) * b
        print(json.dumps({"hf_batch": b, "new_tokens": new, "seconds": round(dt, 3),
                          "tok_s": round(new / dt, 1)}), flush=True)


if __name__ == "__main__":
    main()
