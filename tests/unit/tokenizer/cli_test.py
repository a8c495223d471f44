#!/usr/bin/env python3
"""CLI test: `petrel tokenize` / `petrel detokenize` JSON output vs the Qwen3 refs.json cases.

usage: cli_test.py PATH/TO/petrel FIXTURES_DIR
"""
import json
import os
import subprocess
import sys
import tempfile


def run(args):
    p = subprocess.run(args, capture_output=True)
    if p.returncode != 0:
        raise AssertionError(f"{args[:3]} exited {p.returncode}: {p.stderr.decode()}")
    return json.loads(p.stdout.decode("utf-8"))


def main():
    petrel, fixtures = sys.argv[1], sys.argv[2]
    model = os.path.join(fixtures, "qwen3-tiny")
    with open(os.path.join(fixtures, "refs.json"), encoding="utf-8") as f:
        cases = json.load(f)["tokenizer_cases"]
    failures = 0
    # Each invocation loads the 11 MB tokenizer, so a representative subset keeps this quick:
    # ASCII, whitespace runs, accents, CJK, emoji (ZWJ), special tokens, empty input, CR/LF, NUL.
    wanted = ["Hello world", "Hello  world\n\n\nbye", "naïve café résumé Ünïcödé",
              "你好，世界！机器学习是什么？", "<|im_start|>user\nhi<|im_end|>",
              "text with <|endoftext|> inside", "", "\r\nwindows\r\nlines", "\x00\x01 control"]
    selected = [(i, c) for i, c in enumerate(cases) if c["text"] in wanted]
    assert len(selected) == len(wanted), "refs.json cases changed"
    with tempfile.TemporaryDirectory() as tmp:
        for i, c in selected:
            text = c["text"]
            # --text-file for every case (raw bytes, so NUL/CR survive); --text for those argv can hold.
            path = os.path.join(tmp, f"case{i}.txt")
            with open(path, "wb") as f:
                f.write(text.encode("utf-8"))
            got = run([petrel, "tokenize", model, "--text-file", path, "--json"])
            want = {"ids": c["ids_with_special"], "tokens": c["tokens"]}
            if got != want:
                print(f"FAIL tokenize case {i} {text!r}: {got} != {want}")
                failures += 1
            if "\x00" not in text and i % 3 == 0:
                got = run([petrel, "tokenize", model, "--text", text, "--no-special", "--json"])
                if got["ids"] != c["ids"]:
                    print(f"FAIL tokenize --text --no-special case {i} {text!r}: {got['ids']}")
                    failures += 1
            ids = ",".join(str(x) for x in c["ids_with_special"])
            for flag, key in (([], "decoded"), (["--skip-special"], "decoded_skip_special")):
                got = run([petrel, "detokenize", model, "--ids", ids, *flag, "--json"])
                if got != {"text": c[key]}:
                    print(f"FAIL detokenize {flag} case {i}: {got!r} != {c[key]!r}")
                    failures += 1
    # Errors: an id out of range and a missing model are reported with a non-zero exit code.
    for args in ([petrel, "detokenize", model, "--ids", "99999999", "--json"],
                 [petrel, "tokenize", os.path.join(fixtures, "no-such-dir"), "--text", "x", "--json"],
                 [petrel, "tokenize", model, "--json"]):
        p = subprocess.run(args, capture_output=True)
        if p.returncode == 0 or not p.stderr:
            print(f"FAIL expected an error from {args[1:]}")
            failures += 1
    print(f"{len(selected)} cases, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
