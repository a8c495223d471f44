#!/usr/bin/env python3
"""Reference renders of real chat templates, for tests/golden/template.

For every family directory (tokenizer_config.json and/or chat_template.jinja) and every
conversation in tests/fixtures/templates/conversations.json, renders the prompt with
transformers' `apply_chat_template(messages, tools=..., tokenize=False, add_generation_prompt=...,
**kwargs)` and writes tests/fixtures/templates/refs.json. A conversation the template rejects
(raise_exception, undefined misuse) is recorded as {"error": ...}.

strftime_now() is pinned to NOW_UNIX_SECONDS (UTC) so templates that print the date are
reproducible; petrel's tests pass the same time (ApplyOptions::now_unix_seconds).

Run on the device machine (which has transformers):
    python3 tools/gen_template_refs.py
Versions used for the committed refs are stored in refs.json ("versions").

--engine jinja2 emulates transformers with the plain jinja2 package (same environment options,
tojson, raise_exception, strftime_now), for a quick local check without transformers.
--families / --out select other family directories and output files (e.g. for templates that
cannot be committed).
"""
import argparse
import json
import os
import sys
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TEMPLATES = os.path.join(FIXTURES, "templates")
NOW_UNIX_SECONDS = 1735734300  # 2025-01-01 12:25:00 UTC
DEFAULT_FAMILIES = ["../qwen3-tiny", "llama3_1", "gemma3", "deepseek_v3"]


def token_str(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


def load_family(path):
    """Returns (template or {name: template}, bos, eos) the way transformers loads them."""
    cfg = {}
    cfg_path = os.path.join(path, "tokenizer_config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    jinja_path = os.path.join(path, "chat_template.jinja")
    if os.path.exists(jinja_path):
        with open(jinja_path, encoding="utf-8") as f:
            template = f.read()
    else:
        template = cfg.get("chat_template")
        if isinstance(template, list):
            template = {t["name"]: t["template"] for t in template}
    return template, token_str(cfg.get("bos_token")), token_str(cfg.get("eos_token"))


class FixedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(NOW_UNIX_SECONDS, tz=timezone.utc).replace(tzinfo=tz)


def transformers_renderer():
    import transformers
    from transformers.utils import chat_template_utils
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    chat_template_utils.datetime = FixedDatetime  # strftime_now() uses datetime.now()

    def render(template, bos, eos, conv):
        special = {}
        vocab = {"<unk>": 0}
        for key, tok in (("bos_token", bos), ("eos_token", eos)):
            if tok is not None:
                special[key] = tok
                vocab.setdefault(tok, len(vocab))
        tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
        tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                                         chat_template=template, **special)
        kwargs = dict(conv.get("kwargs", {}))
        return tokenizer.apply_chat_template(conv["messages"], tools=conv.get("tools"), tokenize=False,
                                             add_generation_prompt=conv.get("add_generation_prompt", False),
                                             **kwargs)

    import jinja2
    versions = {"transformers": transformers.__version__, "jinja2": jinja2.__version__}
    return render, versions


def jinja2_renderer():
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return FixedDatetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now

    def render(template, bos, eos, conv):
        if isinstance(template, dict):
            template = template.get("tool_use") if conv.get("tools") and "tool_use" in template \
                else template["default"]
        variables = {}
        if bos is not None:
            variables["bos_token"] = bos
        if eos is not None:
            variables["eos_token"] = eos
        variables.update(conv.get("kwargs", {}))
        return env.from_string(template).render(
            messages=conv["messages"], tools=conv.get("tools"),
            add_generation_prompt=conv.get("add_generation_prompt", False), **variables)

    return render, {"jinja2": jinja2.__version__, "emulated": "transformers settings"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["transformers", "jinja2"], default="transformers")
    ap.add_argument("--families", nargs="*", default=DEFAULT_FAMILIES,
                    help="family directories, relative to tests/fixtures/templates")
    ap.add_argument("--out", default=os.path.join(TEMPLATES, "refs.json"))
    args = ap.parse_args()

    render, versions = transformers_renderer() if args.engine == "transformers" else jinja2_renderer()
    with open(os.path.join(TEMPLATES, "conversations.json"), encoding="utf-8") as f:
        convs = json.load(f)["conversations"]
    renders = []
    for family in args.families:
        template, bos, eos = load_family(os.path.join(TEMPLATES, family))
        if template is None:
            print(f"{family}: no chat template, skipped", file=sys.stderr)
            continue
        for conv in convs:
            entry = {"family": family, "conversation": conv["name"]}
            try:
                entry["rendered"] = render(template, bos, eos, conv)
            except Exception as e:  # noqa: BLE001 - any template failure is a reference outcome
                entry["error"] = f"{type(e).__name__}: {e}"
            renders.append(entry)
    out = {"versions": versions, "now_unix_seconds": NOW_UNIX_SECONDS, "renders": renders}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n_err = sum("error" in r for r in renders)
    print(f"wrote {len(renders)} renders ({n_err} errors) to {args.out}; {versions}")


if __name__ == "__main__":
    main()
