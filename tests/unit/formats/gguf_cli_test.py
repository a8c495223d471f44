#!/usr/bin/env python3
"""End to end: `petrel convert` of the qwen3-tiny fixture to an F16 GGUF (tokenizer and chat
template embedded) and a pickle checkpoint to safetensors, then the GGUF alone runs generate
(--ids and --prompt, --chat), tokenize and template exactly as the safetensors directory does:
same greedy ids, same token ids, byte-identical prompt. A GGUF without tokenizer keys falls back
to the tokenizer.json beside it.

  gguf_cli_test.py PETREL FIXTURES_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)}\n{r.stderr}")
    return r.stdout


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def main():
    petrel, fixtures = sys.argv[1], sys.argv[2]
    model = os.path.join(fixtures, "qwen3-tiny")
    with tempfile.TemporaryDirectory() as tmp:
        gguf = os.path.join(tmp, "qwen3-tiny-f16.gguf")
        run(petrel, "convert", model, "--to", "gguf", "-o", gguf, "--type", "f16")
        # A GGUF alone in a directory: nothing to fall back on.
        for args in (["--ids", "151644,872,198,9707,151645,198"], ["--prompt", "The petrel flies"],
                     ["--chat", "--prompt", "Hi there"]):
            common = ["--max-tokens", "12", "--temperature", "0", "--ignore-eos", "--json"]
            want = last_json(run(petrel, "generate", model, *args, *common))
            got = last_json(run(petrel, "generate", gguf, *args, *common))
            if got != want:
                sys.exit(f"FAIL: generate {args}: gguf {got} != safetensors {want}")
        text = "<|im_start|>user\nCafé 123 — naïve ünïcödé\t😀<|im_end|>"
        if (last_json(run(petrel, "tokenize", gguf, "--text", text, "--json")) !=
                last_json(run(petrel, "tokenize", model, "--text", text, "--json"))):
            sys.exit("FAIL: tokenize differs")
        msgs = os.path.join(tmp, "m.json")
        with open(msgs, "w") as f:
            json.dump([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], f)
        if run(petrel, "template", gguf, "--messages", msgs) != run(petrel, "template", model, "--messages", msgs):
            sys.exit("FAIL: template differs")

        # A GGUF without tokenizer keys (converted from a directory without tokenizer.json) uses the
        # HF files beside it, and says so precisely when there are none.
        bare = os.path.join(tmp, "bare")
        os.mkdir(bare)
        for f in ("config.json", "generation_config.json", "model.safetensors"):
            shutil.copy(os.path.join(model, f), bare)
        lone = os.path.join(tmp, "lone")
        os.mkdir(lone)
        run(petrel, "convert", bare, "--to", "gguf", "-o", os.path.join(lone, "m.gguf"))
        r = subprocess.run([petrel, "tokenize", os.path.join(lone, "m.gguf"), "--text", "hi"], capture_output=True,
                           text=True)
        if r.returncode == 0 or "no tokenizer.ggml.* metadata" not in r.stderr:
            sys.exit(f"FAIL: GGUF without a tokenizer: {r.stderr}")
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(model, f), lone)
        if (last_json(run(petrel, "tokenize", os.path.join(lone, "m.gguf"), "--text", text, "--json")) !=
                last_json(run(petrel, "tokenize", model, "--text", text, "--json"))):
            sys.exit("FAIL: tokenizer beside the GGUF")

        out = os.path.join(tmp, "st")
        run(petrel, "convert", os.path.join(fixtures, "pickle"), "--to", "safetensors", "-o", out)
        names = sorted(os.listdir(out))
        want = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]
        if [n for n in names if n.startswith("model")] != want:
            sys.exit(f"FAIL: convert --to safetensors wrote {names}")
        bad = subprocess.run([petrel, "convert", os.path.join(fixtures, "pickle", "evil_os_system.bin"), "--to",
                              "safetensors", "-o", os.path.join(tmp, "evil")], capture_output=True, text=True)
        if bad.returncode == 0 or "is not allowed" not in bad.stderr:
            sys.exit(f"FAIL: hostile pickle was not refused: {bad.stderr}")
    print("gguf_cli_test: OK")


if __name__ == "__main__":
    main()
