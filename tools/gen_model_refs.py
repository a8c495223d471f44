#!/usr/bin/env python3
"""Generates tiny random models of the Llama family and transformers reference logits for them.

For every model below this script
  1. builds the model from a config with random weights (seeded; norms and biases non-trivial so
     every tensor matters), casts it to bfloat16 and writes it with `save_pretrained` into
     OUT/<name>/ (config.json, generation_config.json, model.safetensors);
  2. reloads the stored bf16 weights as float32 (eager attention, CPU) and computes references in
     the format of tests/fixtures/refs.json `base` entries:
       refs.json = {"probe_ids": [...],
                    "cases": [{"name", "ids",
                               "positions": [{top_ids, top_logits, logsumexp, probe_logits}],
                               "greedy": [{top_ids, top_logits, logsumexp, probe_logits, margin,
                                           token} x 24]}],
                    "versions": {...},
                    "rope": {"inv_freq": [...], "attention_scaling": x}}

The C++ golden test (tests/golden/model/model_golden_test.cc) runs every
tests/fixtures/models/*/refs.json.

Usage (transformers + torch needed; CPU is enough and deterministic):
    python3 tools/gen_model_refs.py OUT_DIR
Then copy OUT_DIR/<name>/ to tests/fixtures/models/<name>/ (see tests/fixtures/models/PROVENANCE.md).
"""
import inspect
import json
import math
import os
import sys

import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

TOP_K = 5
N_PROBES = 32
GREEDY_STEPS = 24
TRANSFORMERS_5 = int(transformers.__version__.split(".")[0]) >= 5


def rope_kwargs(theta, scaling):
    """Config kwargs for RoPE in the key style of the installed transformers."""
    if TRANSFORMERS_5:
        params = {"rope_type": "default", "rope_theta": theta}
        if scaling:
            params.update(scaling)
        return {"rope_parameters": params}
    kw = {"rope_theta": theta}
    if scaling:
        kw["rope_scaling"] = dict(scaling)
    return kw


# name -> (config class, model class, config kwargs, seed). Sizes are small (fixtures stay a few MB)
# but cover GQA, MQA, head_dim != hidden/heads, tied and untied embeddings, q/k/v bias, a sliding
# window shorter than the long prompt, and every RoPE variant petrel implements.
MODELS = {
    # Llama 3.x style: untied embeddings, llama3 RoPE scaling. original_max_position_embeddings 32 and
    # head_dim 16 with theta 1e4 put frequencies in all three llama3 bands (kept / smoothed / divided).
    "llama-tiny-llama3": (LlamaConfig, LlamaForCausalLM, dict(
        vocab_size=4096, hidden_size=64, intermediate_size=160, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        **rope_kwargs(10000.0, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
     11),
    # Qwen2: q/k/v bias (random, non-zero), tied embeddings, MQA (1 kv head), head_dim 32.
    "qwen2-tiny": (Qwen2Config, Qwen2ForCausalLM, dict(
        vocab_size=3000, hidden_size=96, intermediate_size=192, num_hidden_layers=4,
        num_attention_heads=3, num_key_value_heads=1, max_position_embeddings=4096,
        rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
        use_sliding_window=False, **rope_kwargs(1000000.0, None)),
     12),
    # YaRN: factor 4 over original_max_position_embeddings 32; max_position_embeddings 256 is not
    # factor x original on purpose, so the reference pins which of the two transformers uses.
    "llama-tiny-yarn": (LlamaConfig, LlamaForCausalLM, dict(
        vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=256,
        rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        **rope_kwargs(10000.0, {"rope_type": "yarn", "factor": 4.0,
                                "original_max_position_embeddings": 32})),
     13),
    # Mistral: sliding window 16 (shorter than the long prompt), linear RoPE scaling, head_dim 32
    # with hidden 64 and 4 heads (q is wider than the residual stream).
    "mistral-tiny": (MistralConfig, MistralForCausalLM, dict(
        vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=1024,
        rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=16, bos_token_id=1,
        eos_token_id=2, **rope_kwargs(10000.0, {"rope_type": "linear", "factor": 2.0})),
     14),
}


def randomize(model, seed):
    """Weights with O(1) activations and logits of a few units, so references discriminate."""
    g = torch.Generator().manual_seed(seed)
    tied = model.config.tie_word_embeddings
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * r)
            elif name.endswith(".bias"):
                p.copy_(0.3 * r)
            elif "embed_tokens" in name:
                p.copy_(r * (0.35 if tied else 1.0))
            elif name.startswith("lm_head"):
                p.copy_(r * 0.35)
            else:  # Linear [out, in]
                p.copy_(r / math.sqrt(p.shape[1]))


def row_ref(logits, probe):
    """One reference row from float32 logits [vocab]."""
    top = torch.topk(logits, TOP_K)
    return {
        "top_ids": [int(i) for i in top.indices],
        "top_logits": [round(float(v), 6) for v in top.values],
        "logsumexp": round(float(torch.logsumexp(logits.double(), 0)), 6),
        "probe_logits": [round(float(logits[i]), 6) for i in probe],
    }


def case_ref(model, name, ids, probe):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()  # [T, vocab]
        positions = [row_ref(logits[t], probe) for t in range(len(ids))]
        greedy = []
        seq = list(ids)
        last = logits[-1]
        for _ in range(GREEDY_STEPS):
            r = row_ref(last, probe)
            top2 = torch.topk(last, 2).values
            r["margin"] = round(float(top2[0] - top2[1]), 6)
            r["token"] = int(torch.argmax(last))
            greedy.append(r)
            seq.append(r["token"])
            last = model(torch.tensor([seq])).logits[0, -1].float()
    return {"name": name, "ids": ids, "positions": positions, "greedy": greedy}


def rope_ref(model):
    rot = model.model.rotary_emb
    return {"inv_freq": [float(x) for x in rot.inv_freq.float()],
            "attention_scaling": float(getattr(rot, "attention_scaling", 1.0))}


def generate(out, name, cfg_cls, model_cls, kw, seed, versions):
    """Writes OUT/<name>/{config.json, generation_config.json, model.safetensors, refs.json}."""
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(seed)
    cfg = cfg_cls(**kw)
    model = model_cls(cfg).float()
    randomize(model, seed)
    model = model.to(torch.bfloat16)
    model.save_pretrained(d, safe_serialization=True)
    # References from the stored bf16 weights, computed in float32.
    dtype_kw = {"dtype": torch.float32} if TRANSFORMERS_5 else {"torch_dtype": torch.float32}
    ref_model = model_cls.from_pretrained(d, attn_implementation="eager", **dtype_kw).eval()
    vocab = ref_model.config.vocab_size
    g = torch.Generator().manual_seed(seed + 1000)
    probe = sorted(set(int(x) for x in torch.randint(0, vocab, (N_PROBES,), generator=g)))
    lengths = {"one": 1, "short": 5, "mid": 17, "long": 48}
    cases = []
    for cname, n in lengths.items():
        ids = [int(x) for x in torch.randint(3, vocab, (n,), generator=g)]
        cases.append(case_ref(ref_model, cname, ids, probe))
    refs = {"probe_ids": probe, "cases": cases, "versions": versions,
            "rope": rope_ref(ref_model)}
    with open(os.path.join(d, "refs.json"), "w") as f:
        json.dump(refs, f, separators=(",", ":"))
    margins = [s["margin"] for c in cases for s in c["greedy"]]
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, rope {refs['rope']}, "
          f"min greedy margin {min(margins):.4f}, files {sorted(os.listdir(d))}", flush=True)


def main():
    out = sys.argv[1]
    torch.set_num_threads(4)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import safetensors
        versions["safetensors"] = safetensors.__version__
    except ImportError:
        pass
    for name, spec in MODELS.items():
        try:
            generate(out, name, *spec, versions)
        except Exception:  # keep going: one family failing must not lose the others
            import traceback
            traceback.print_exc()
    # The RoPE init code these references came from, for reading when a table differs.
    try:
        from transformers import modeling_rope_utils as mru
        with open(os.path.join(out, "rope_src.py"), "w") as f:
            for fn in ("_compute_linear_scaling_rope_parameters", "_compute_yarn_parameters",
                       "_compute_llama3_parameters"):
                if hasattr(mru, fn):
                    f.write(inspect.getsource(getattr(mru, fn)) + "\n")
    except Exception as e:  # only a reading aid
        print("no rope source:", e)


if __name__ == "__main__":
    main()
