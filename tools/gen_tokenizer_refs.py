#!/usr/bin/env python3
"""Reference data for petrel's tokenizer (src/tokenizer), produced with Hugging Face `tokenizers`.

Three sub-commands:

  corpus           (no dependencies) writes the differential corpus,
                   tests/fixtures/tokenizers/corpus/*.txt, deterministically from the seed texts
                   below (written for this project: mixed languages incl. CJK/Arabic/emoji, code,
                   whitespace oddities, special-token text). Nothing is downloaded.
  refs OUTDIR      (needs tokenizers, transformers) writes OUTDIR/{qwen3,llama2,llama3}_refs.json:
                   for tricky strings ids / ids with special tokens / tokens / decodes, and for
                   every corpus document its ids and decode.
  bench OUTFILE    (needs tokenizers) times the Rust `tokenizers` library on the same corpus, one
                   thread: load of the Qwen3 tokenizer.json and encode MB/s. Writes JSON.

Decodes are `tokenizers`' decode() followed by transformers' clean_up_tokenization() when the
family's tokenizer_config.json sets clean_up_tokenization_spaces (what transformers' decode()
does). For information each refs file also records where transformers' AutoTokenizer disagrees.

Pinned versions used for the committed fixtures: tokenizers 0.23.2, transformers 5.17.0
(recorded in each refs file under "versions").
"""
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
CORPUS_DIR = os.path.join(FIX, "tokenizers", "corpus")
FAMILIES = {
    "qwen3": os.path.join(FIX, "qwen3-tiny"),
    "llama2": os.path.join(FIX, "tokenizers", "llama2"),
    "llama3": os.path.join(FIX, "tokenizers", "llama3"),
}

# --------------------------------------------------------------------------------------------
# Seed texts (written for this corpus).
# --------------------------------------------------------------------------------------------
PROSE = {
    "en": [
        "The committee met on Tuesday to discuss the budget for the new library wing.",
        "She didn't think the weather would hold, but they'd already packed the car.",
        "In 1969, roughly 600 million people watched the first Moon landing on television.",
        "Machine learning models are only as reliable as the data they were trained on.",
        "We'll need three eggs, 250 g of flour, a pinch of salt and 300 ml of milk.",
        "The quick brown fox jumps over the lazy dog; the dog, unimpressed, goes back to sleep.",
        "Dr. O'Neill's lecture — titled \"Entropy & You\" — ran 45 minutes over schedule.",
        "I'm not sure it's worth it, you're welcome to try though; we've tried twice.",
        "THE END OF THE LINE IS NEAR, SAID THE CONDUCTOR, AND EVERYONE LAUGHED.",
        "Prices rose 3.7% year-over-year, while wages grew by only 2.1 percent.",
    ],
    "fr": [
        "L'été dernier, nous sommes allés à la plage près de Saint-Malo.",
        "Ça ne fait rien : il faut continuer à travailler jusqu'à la fin de l'année.",
        "Les élèves ont répondu à toutes les questions, même les plus difficiles.",
    ],
    "de": [
        "Die Straßenbahn fährt alle zehn Minuten über die große Brücke.",
        "Übermäßiger Kaffeekonsum führt nicht unbedingt zu höherer Produktivität.",
        "Donaudampfschifffahrtsgesellschaftskapitän ist ein sehr langes Wort.",
    ],
    "es": [
        "¿Dónde está la estación? ¡No lo sé, pregúntale al señor de la esquina!",
        "El niño comió una manzana y después jugó al fútbol con sus amigos.",
    ],
    "tr": ["İstanbul'da ılık bir akşam; Iğdır'dan gelen misafirler çay içti."],
    "ru": [
        "Привет, как дела? Сегодня в Москве идёт снег и очень холодно.",
        "Программирование на языке C++ требует внимательности и терпения.",
    ],
    "el": ["Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο. ΟΔΥΣΣΕΥΣ"],
    "zh": [
        "机器学习是人工智能的一个分支，它使计算机能够从数据中学习。",
        "今天天气很好，我们去公园散步吧！你觉得怎么样？",
        "北京是中国的首都，有着三千多年的历史。",
    ],
    "ja": [
        "東京は日本の首都であり、世界最大の都市圏の一つです。",
        "こんにちは、お元気ですか？カタカナとひらがなと漢字が混ざっています。",
    ],
    "ko": ["안녕하세요, 만나서 반갑습니다. 오늘은 날씨가 정말 좋네요."],
    "ar": [
        "مرحبا بالعالم، كيف حالك اليوم؟ الطقس جميل جدا.",
        "اللغة العربية تكتب من اليمين إلى اليسار، وأرقامها ١٢٣٤٥٦٧٨٩٠.",
    ],
    "he": ["שלום עולם, מה שלומך היום?"],
    "hi": ["नमस्ते दुनिया, आप कैसे हैं? भारत एक विशाल देश है।"],
    "th": ["สวัสดีครับ วันนี้อากาศดีมาก"],
    "vi": ["Tiếng Việt có rất nhiều dấu thanh: à, á, ả, ã, ạ."],
}

CODE = [
    "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <vector>\n\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto& x : v) x *= 2;\n\treturn v[0] != 2;\n}\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(2, 3)}`); // 5\n",
    '{"name": "petrel", "version": "0.1.0", "tags": ["llm", "c++"], "ok": true, "n": null}\n',
    "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC LIMIT 10;\n",
    "<div class=\"card\">\n  <h1>Title &amp; subtitle</h1>\n  <p>Text&nbsp;here</p>\n</div>\n",
    "for f in *.txt; do\n  wc -l \"$f\" | awk '{print $1}' >> counts.log\ndone\n",
    "    x = [i**2 for i in range(10) if i % 2 == 0]  # squares of evens\n",
    "fn main() {\n    let s: &str = \"héllo\";\n    println!(\"{}\", s.len());\n}\n",
    "| col A | col B |\n|-------|-------|\n| 1     | 2     |\n",
]

ODDITIES = [
    "  leading spaces", "trailing spaces   ", "tabs\tin\tthe\tmiddle", "\t\tindented with tabs",
    "windows\r\nline\r\nendings", "old mac\rline", "many\n\n\n\nnewlines", "spaces    and\t\ttabs",
    "non\u00a0breaking\u00a0space", "ideographic\u3000space", "zero\u200bwidth\u200bspace",
    "word\u200djoiner", "soft\u00adhyphen", "em\u2003space", "line\u2028separator",
    "\u0000nul and \u0001 control \u007f chars", "e\u0301 decomposed vs \u00e9 composed",
    "A\u030a ring, \u212b angstrom, \u00c5 composed", "ﬁ ligature ﬀ ﬃ", "①②③ ⅷ ²³",
    "𝕿𝖍𝖊 𝖖𝖚𝖎𝖈𝖐 math letters 𝟙𝟚𝟛", "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ１２３", "Ġ Ċ ĉ raw byte-level chars",
    "<0x41> looks like a byte token", "\ufffd replacement char", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!!????????........", "----------==========__________", "1234567890123456789012345678901234567890",
    "3.14159265358979 2,718.28 -0.5e-10 0x1F 1_000_000", "https://example.com/a/b?c=d&e=f#g",
    "user.name+tag@example.co.uk", "C:\\Users\\petrel\\file.txt", "$100 €200 £300 ¥400 ₹500",
    "Hello , world ! How are you ? I 'm fine . It 's ok , isn 't it ? they 're here , we 've won",
]

EMOJI = [
    "🙂", "🚀", "👩\u200d👩\u200d👧", "🇫🇷", "🏳️\u200d🌈", "👍🏽", "❤️", "🤖", "🎉🎉🎉", "😀😃😄", "🧑\u200d💻",
    "🐍", "✅", "⚠️", "🔥", "1️⃣",
]

SPECIALS = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<s>", "</s>", "<unk>",
    "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_5|>", "<|im_start", "im_end|>", "< s >", "<|vision_pad|>",
]

CASES = [
    "Hello <s> world </s>", "<s>hello", " <s> x", "<unk>", "</s></s>", "<s> <s>",
    "<|begin_of_text|>Hi there<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "  multiple   spaces  ", "\t\ttabs", "İstanbul ΣΑΣ ὈΔΥΣΣΕΎΣ", "e\u0301", "\u00a0nbsp\u3000ideographic",
    "zero\u200bwidth", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🇫🇷🏳️\u200d🌈👍🏽", "3.14159265358979323846", "don't won't can't I'M",
    "Hello , world ! How are you ? I 'm fine . It 's ok n't", "日本語のテキストとEnglish mixed 混合",
    "안녕하세요", "ภาษาไทย", "नमस्ते", "שלום", "x" * 300, "ab" * 200, " " * 17, "\n" * 9, "\r\n\r\n",
    "a\u0000b", "\ufffd", "<0x41><0x42>", "▁already▁has▁metaspace", "Ġalready Ġbyte", "  <|im_start|>  ",
    "hello<|endoftext|>", "1 22 333 4444 55555 666666", "ΑΒΓ αβγ", "Ünïcödé ﬁ", "x\u0301\u0302\u0303",
    " Hello world", "Hello world ", "\u3000", "a  b   c    d", "end with newline\n", "  \n  \n",
]


def make_corpus():
    """Deterministic documents (~2 KB each) mixing the seeds with random perturbations."""
    rng = random.Random(20260101)
    prose = [s for v in PROSE.values() for s in v]
    docs = []
    kinds = ["prose", "code", "mixed", "multilingual", "oddities", "chat"]
    for i in range(150):
        kind = kinds[i % len(kinds)]
        parts = []
        size = rng.randint(1500, 2600)
        while sum(len(p.encode()) for p in parts) < size:
            r = rng.random()
            if kind == "code" or (kind == "mixed" and r < 0.3):
                parts.append(rng.choice(CODE))
            elif kind == "multilingual":
                lang = rng.choice(list(PROSE))
                parts.append(rng.choice(PROSE[lang]) + rng.choice([" ", "\n", "", "  "]))
            elif kind == "oddities" or (kind == "mixed" and r < 0.5):
                parts.append(rng.choice(ODDITIES) + rng.choice([" ", "\n", "\t", "", "\r\n"]))
            elif kind == "chat":
                role = rng.choice(["user", "assistant", "system"])
                body = rng.choice(prose)
                if rng.random() < 0.3:
                    body += " " + rng.choice(EMOJI)
                parts.append(rng.choice([
                    f"<|im_start|>{role}\n{body}<|im_end|>\n",
                    f"<|start_header_id|>{role}<|end_header_id|>\n\n{body}<|eot_id|>",
                    f"<s>[INST] {body} [/INST] {rng.choice(prose)} </s>",
                    f"<think>\n{body}\n</think>\n\n",
                    rng.choice(SPECIALS) + body,
                ]))
            else:
                s = rng.choice(prose)
                # Perturb: shuffle words, change case, inject emoji/numbers/whitespace.
                words = s.split(" ")
                if rng.random() < 0.3:
                    rng.shuffle(words)
                if rng.random() < 0.2:
                    words = [w.upper() if rng.random() < 0.5 else w.lower() for w in words]
                if rng.random() < 0.3:
                    words.insert(rng.randrange(len(words) + 1), rng.choice(EMOJI))
                if rng.random() < 0.2:
                    words.insert(rng.randrange(len(words) + 1), str(rng.randint(0, 10**rng.randint(1, 12))))
                sep = rng.choice([" ", " ", " ", "  ", "\t", "\u00a0"])
                parts.append(sep.join(words) + rng.choice([" ", "\n", "\n\n", " ", ""]))
        docs.append((f"{i:03d}_{kind}", "".join(parts)))
    return docs


def write_corpus():
    os.makedirs(CORPUS_DIR, exist_ok=True)
    total = 0
    for name, text in make_corpus():
        with open(os.path.join(CORPUS_DIR, name + ".txt"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
        total += len(text.encode())
    print(f"wrote {len(os.listdir(CORPUS_DIR))} documents, {total} bytes to {CORPUS_DIR}")


def read_corpus():
    docs = []
    for name in sorted(os.listdir(CORPUS_DIR)):
        if name.endswith(".txt"):
            with open(os.path.join(CORPUS_DIR, name), "rb") as f:
                docs.append((name[:-4], f.read().decode("utf-8")))
    return docs


def clean_up_tokenization(s):
    # transformers' PreTrainedTokenizerBase.clean_up_tokenization.
    return (s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
            .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
            .replace(" 've", "'ve").replace(" 're", "'re"))


def case_strings():
    with open(os.path.join(FIX, "refs.json"), encoding="utf-8") as f:
        base = [c["text"] for c in json.load(f)["tokenizer_cases"]]
    return base + CASES


def make_refs(outdir):
    import tokenizers
    from tokenizers import Tokenizer
    try:
        import transformers
        from transformers import AutoTokenizer
    except Exception:  # transformers is optional (only for the comparison notes)
        transformers = None
    versions = {"tokenizers": tokenizers.__version__,
                "transformers": transformers.__version__ if transformers else None}
    docs = read_corpus()
    os.makedirs(outdir, exist_ok=True)
    for family, d in FAMILIES.items():
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        clean = bool(cfg.get("clean_up_tokenization_spaces", False))

        def dec(ids, skip):
            s = tok.decode(ids, skip_special_tokens=skip)
            return clean_up_tokenization(s) if clean else s

        hf = None
        if transformers:
            try:
                hf = AutoTokenizer.from_pretrained(d)
            except Exception as e:  # record and go on
                versions[f"{family}_transformers_error"] = repr(e)
        cases, notes = [], []
        for text in case_strings():
            enc = tok.encode(text, add_special_tokens=False)
            ws = tok.encode(text, add_special_tokens=True).ids
            tok.encode_special_tokens = True
            nps = tok.encode(text, add_special_tokens=False).ids
            tok.encode_special_tokens = False
            cases.append({"text": text, "ids": enc.ids, "ids_with_special": ws, "tokens": enc.tokens,
                          "decoded": dec(ws, False), "decoded_skip_special": dec(ws, True),
                          "ids_no_parse_special": nps})
            if hf is not None:
                t_ids = hf(text)["input_ids"]
                t_dec = hf.decode(ws)
                if t_ids != ws or t_dec != cases[-1]["decoded"]:
                    notes.append({"text": text, "transformers_ids": t_ids,
                                  "transformers_decoded": t_dec})
        corpus = []
        for name, text in docs:
            ids = tok.encode(text, add_special_tokens=False).ids
            corpus.append({"name": name, "text": text, "ids": ids, "decoded": dec(ids, False)})
            if hf is not None:
                t_ids = hf(text, add_special_tokens=False)["input_ids"]
                if t_ids != ids:
                    notes.append({"corpus_doc": name, "transformers_ids_differ": True})
        out = {"versions": versions, "family": family, "clean_up_tokenization_spaces": clean,
               "cases": cases, "corpus": corpus, "transformers_differences": notes}
        with open(os.path.join(outdir, f"{family}_refs.json"), "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        print(family, len(cases), "cases,", len(corpus), "docs,", len(notes), "transformers diffs")


def bench(outfile):
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    import tokenizers
    from tokenizers import Tokenizer
    path = os.path.join(FAMILIES["qwen3"], "tokenizer.json")
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        tok = Tokenizer.from_file(path)
        loads.append(time.perf_counter() - t0)
    docs = [t for _, t in read_corpus()]
    nbytes = sum(len(t.encode()) for t in docs)
    result = {"tokenizers": tokenizers.__version__, "corpus_bytes": nbytes,
              "load_ms_min": min(loads) * 1e3, "load_ms_median": sorted(loads)[2] * 1e3}
    for family, d in FAMILIES.items():
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        times = []
        for _ in range(6):
            t0 = time.perf_counter()
            n = 0
            for t in docs:
                n += len(tok.encode(t, add_special_tokens=False).ids)
            times.append(time.perf_counter() - t0)
        result[family] = {"first_pass_mb_s": nbytes / times[0] / 1e6,
                          "best_mb_s": nbytes / min(times) / 1e6, "ids": n}
    with open(outfile, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "corpus":
        write_corpus()
    elif len(sys.argv) >= 3 and sys.argv[1] == "refs":
        make_refs(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "bench":
        bench(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
