// `petrel tokenize` and `petrel detokenize`: the tokenizer from the command line, with JSON
// output that tests and comparison scripts read.
//
//   petrel tokenize MODEL_DIR (--text TEXT | --text-file PATH) [--no-special] --json
//     -> {"ids": [...], "tokens": [...]}   (special tokens added as transformers' tokenizer(text)
//                                            does, unless --no-special; the file is raw UTF-8)
//   petrel detokenize MODEL_DIR --ids 1,2,3 [--skip-special] --json
//     -> {"text": "..."}
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/model_text.h"
#include "core/json_util.h"
#include "tokenizer/tokenizer.h"

namespace petrel::cli {

namespace {

int Fail(const Error& e) {
  std::fprintf(stderr, "petrel: %s\n", e.ToString().c_str());
  return e.code == ErrorCode::kInvalidArgument ? 2 : 1;
}

// Parses flags; returns -1 to continue, else the exit code (usage shown).
int ParseOrUsage(Flags& f, int argc, char** argv) {
  if (auto st = f.Parse(argc, argv); !st.ok()) return Fail(st.error());
  if (f.help() || f.positional().size() != 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  return -1;
}

}  // namespace

int RunTokenize(int argc, char** argv) {
  std::string text, text_file;
  bool no_special = false, json = false;
  Flags f("petrel tokenize MODEL_DIR (--text TEXT | --text-file PATH) [--no-special] --json");
  f.Add("text", &text, "text to tokenize");
  f.Add("text-file", &text_file, "read the text from this file (raw UTF-8 bytes)");
  f.AddSwitch("no-special", &no_special, "do not add BOS/EOS (the post-processor's tokens)");
  f.AddSwitch("json", &json, "print {\"ids\": [...], \"tokens\": [...]}");
  if (int rc = ParseOrUsage(f, argc, argv); rc >= 0) return rc;
  if (f.Seen("text") == f.Seen("text-file")) {
    return Fail(InvalidArgument("give exactly one of --text and --text-file"));
  }
  if (f.Seen("text-file")) {
    std::ifstream in(text_file, std::ios::binary);
    if (!in) return Fail(IoError("cannot open ", text_file));
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto tok = LoadTokenizer(f.positional()[0]);
  if (!tok.ok()) return Fail(tok.error());
  auto ids = (*tok)->Encode(text, {.add_special_tokens = !no_special});
  if (!ids.ok()) return Fail(ids.error());
  const std::vector<std::string> tokens = (*tok)->IdsToTokens(*ids);
  if (json) {
    Json out = {{"ids", *ids}, {"tokens", tokens}};
    std::printf("%s\n", DumpJson(out).c_str());
  } else {
    for (size_t i = 0; i < ids->size(); ++i) {
      std::printf("%d\t%s\n", (*ids)[i], tokens[i].c_str());
    }
  }
  return 0;
}

int RunDetokenize(int argc, char** argv) {
  std::string ids_flag;
  bool skip_special = false, json = false;
  Flags f("petrel detokenize MODEL_DIR --ids 1,2,3 [--skip-special] --json");
  f.Add("ids", &ids_flag, "comma-separated token ids");
  f.AddSwitch("skip-special", &skip_special, "drop special tokens from the text");
  f.AddSwitch("json", &json, "print {\"text\": \"...\"}");
  if (int rc = ParseOrUsage(f, argc, argv); rc >= 0) return rc;
  if (!f.Seen("ids")) return Fail(InvalidArgument("--ids is required"));
  std::vector<int32_t> ids;
  if (!ids_flag.empty()) {
    auto parsed = ParseIdList(ids_flag);
    if (!parsed.ok()) return Fail(parsed.error());
    ids = std::move(parsed).value();
  }
  auto tok = LoadTokenizer(f.positional()[0]);
  if (!tok.ok()) return Fail(tok.error());
  auto text = (*tok)->Decode(ids, skip_special);
  if (!text.ok()) return Fail(text.error());
  if (json) {
    std::printf("%s\n", DumpJson(Json{{"text", *text}}).c_str());
  } else {
    std::printf("%s\n", text->c_str());
  }
  return 0;
}

}  // namespace petrel::cli
