#!/usr/bin/env python3
"""Trains a small Qwen3-architecture model from scratch, so that quantization quality (issue 7) can
be measured on a model with real, trained weights instead of the random fixture.

Runs on the device machine (PyTorch + transformers + tokenizers are there; nothing is downloaded):

  python3 tools/train_tiny_model.py --corpus corpus.txt.xz --tokenizer-dir tests/fixtures/qwen3-tiny \
      --eval eval.txt --out /tmp/qwen3-trained --seconds 150

- tokenizer: the real Qwen3 tokenizer (tokenizer.json / tokenizer_config.json copied from
  --tokenizer-dir), so the model directory loads in petrel and transformers alike;
- corpus: any UTF-8 text (.txt or .xz). We used the English documentation of Debian 12 packages
  (/usr/share/doc: NEWS, README, *.md, licenses), libpng's manual held out for evaluation;
- model: Qwen3ForCausalLM, hidden 128, 6 layers, 4 query / 2 KV heads of 32, MLP 512, tied
  embeddings: every matrix's input dimension is a multiple of 128, so int4 groups of 32/64/128 all
  apply;
- training: AdamW, bf16 autocast, sequences of 256 tokens, cosine decay, for --seconds seconds;
- evaluation: perplexity in float32 over consecutive windows of --ctx tokens of --eval (each window
  a fresh sequence, every token after the window's first scored) — the same procedure as
  `petrel perplexity --ctx`, so the two numbers can be compared directly.
Writes the model directory (bf16 safetensors) and eval.json with the perplexity.
"""
import argparse, json, lzma, math, os, shutil, time

import torch
from tokenizers import Tokenizer
from transformers import Qwen3Config, Qwen3ForCausalLM


def read_text(path):
    if path.endswith(".xz"):
        with lzma.open(path, "rt", encoding="utf-8", errors="ignore") as f:
            return f.read()
    with open(path, encoding="utf-8", errors="ignore") as f:
        return f.read()


def windows_perplexity(model, ids, ctx, max_windows, device):
    n = min(len(ids) // ctx, max_windows) if max_windows > 0 else len(ids) // ctx
    nll, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for w in range(n):
            x = torch.tensor(ids[w * ctx:(w + 1) * ctx], device=device)[None]
            logits = model(x).logits.float()[0]
            lp = torch.log_softmax(logits[:-1], dim=-1)
            nll -= lp.gather(1, x[0, 1:, None]).sum().item()
            count += ctx - 1
    return math.exp(nll / count), count, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer-dir", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=150)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--max-windows", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    dev = "cuda"

    tok = Tokenizer.from_file(os.path.join(a.tokenizer_dir, "tokenizer.json"))
    text = read_text(a.corpus)
    docs = [d for d in text.split("\n\n") if d.strip()]
    ids = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(151643)  # <|endoftext|> between documents
    data = torch.tensor(ids, dtype=torch.long)
    print(f"corpus: {len(text)} chars, {len(ids)} tokens", flush=True)

    cfg = Qwen3Config(vocab_size=151936, hidden_size=128, intermediate_size=512, num_hidden_layers=6,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                      max_position_embeddings=4096, rope_theta=1000000.0, rms_norm_eps=1e-6,
                      tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645)
    model = Qwen3ForCausalLM(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    seq, batch = 256, 32
    t0, step = time.time(), 0
    model.train()
    while True:
        elapsed = time.time() - t0
        if elapsed > a.seconds:
            break
        lr = 2e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / a.seconds))))
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 100)
        starts = torch.randint(0, len(data) - seq - 1, (batch,))
        x = torch.stack([data[s:s + seq + 1] for s in starts]).to(dev)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x[:, :-1], labels=x[:, :-1].clone())
        # labels above are shifted inside the model: loss of predicting x[t+1] from x[..t]
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 200 == 0:
            print(f"step {step} t={elapsed:.0f}s loss {out.loss.item():.3f} lr {lr:.2e}", flush=True)
        step += 1

    model = model.float()
    eval_ids = tok.encode(read_text(a.eval), add_special_tokens=False).ids
    ppl, scored, n = windows_perplexity(model, eval_ids, a.ctx, a.max_windows, dev)
    print(f"trained {step} steps in {a.seconds:.0f}s; eval perplexity (f32) {ppl:.4f} over {scored} "
          f"tokens ({n} windows of {a.ctx})", flush=True)

    model.to(torch.bfloat16).save_pretrained(a.out, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.tokenizer_dir, f), os.path.join(a.out, f))
    # bf16 rounding changes the model: score the saved weights too (upcast to f32 to compute).
    saved = Qwen3ForCausalLM.from_pretrained(a.out, dtype=torch.float32).to(dev)
    ppl_saved, _, _ = windows_perplexity(saved, eval_ids, a.ctx, a.max_windows, dev)
    print(f"saved bf16 weights: eval perplexity (f32 compute) {ppl_saved:.4f}", flush=True)
    with open(os.path.join(a.out, "eval.json"), "w") as f:
        json.dump({"steps": step, "seconds": a.seconds, "eval_tokens": scored, "windows": n,
                   "ctx": a.ctx, "perplexity_f32_before_bf16": ppl, "perplexity_saved_bf16": ppl_saved,
                   "torch": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
