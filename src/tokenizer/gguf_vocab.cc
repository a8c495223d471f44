// GGUF tokenizer metadata <-> tokenizer.json (see gguf_vocab.h). Key names and token types are
// llama.cpp's (ggml docs/gguf.md "Tokenizer"; gguf-py constants); the SentencePiece merge order is
// rebuilt from scores as transformers' SentencePieceExtractor does (convert_slow_tokenizer.py).
#include "tokenizer/gguf_vocab.h"

#include <algorithm>
#include <unordered_map>

#include "tokenizer/json_get.h"
#include "tokenizer/string_map.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

namespace {

using TT = GgufTokenType;

// Pre-tokenizer split regexes as the Hugging Face tokenizer.json files of these families spell
// them (llama.cpp's `tokenizer.ggml.pre` names the same splits).
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct PreSpec {
  std::string_view regex;  // empty: GPT-2's ByteLevel regex
  bool nfc;
  bool ignore_merges;
};

// `tokenizer.ggml.pre` values petrel reads (llama.cpp's aliases for the same split).
std::optional<PreSpec> FindPre(std::string_view pre) {
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return PreSpec{kQwen2Regex, true, false};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "falcon3" || pre == "pixtral") {
    return PreSpec{kLlama3Regex, false, true};
  }
  if (pre.empty() || pre == "default" || pre == "gpt-2" || pre == "gpt2") {
    return PreSpec{"", false, false};
  }
  return std::nullopt;
}

constexpr std::string_view kSpace = "\xE2\x96\x81";  // "▁", SentencePiece's space

std::string Key(std::string_view k) { return "GGUF metadata \"" + std::string(k) + "\""; }
// "GGUF metadata "key[i]"".
std::string KeyAt(std::string_view k, size_t i) { return Key(std::string(k) + "[" + std::to_string(i) + "]"); }

const Json* Get(const Json& kv, std::string_view key) {
  if (!kv.is_object()) return nullptr;
  auto it = kv.find(key);
  return it == kv.end() ? nullptr : &*it;
}

// An array value; nullptr when absent and not required.
Result<const Json*> GetArray(const Json& kv, std::string_view key, bool required) {
  const Json* v = Get(kv, key);
  if (v == nullptr) {
    if (required) return InvalidFormat(Key(key), " is missing");
    return nullptr;
  }
  if (!v->is_array()) return InvalidFormat(Key(key), " must be an array (it is a ", v->type_name(), ")");
  return v;
}

// Views into `a`'s strings (which must outlive them).
Result<std::vector<std::string_view>> StringArray(const Json& a, std::string_view key) {
  std::vector<std::string_view> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) {
      return InvalidFormat(Key(key), " must be an array of strings (element ", i, " is a ",
                           a[i].type_name(), ")");
    }
    out.push_back(a[i].get_ref<const std::string&>());
    size_t bad = 0;
    if (!utf8::IsValid(out.back(), &bad)) {
      return InvalidFormat(KeyAt(key, i), " is not valid UTF-8 (byte ", bad, ")");
    }
  }
  return out;
}

Result<std::optional<int32_t>> GetId(const Json& kv, std::string_view key, size_t n_tokens) {
  const Json* v = Get(kv, key);
  if (v == nullptr) return std::optional<int32_t>();
  if (!v->is_number_integer()) return InvalidFormat(Key(key), " must be an integer");
  const int64_t id = v->get<int64_t>();
  // llama.cpp writes -1 (as a signed value) for "none" in some files.
  if (id == -1) return std::optional<int32_t>();
  if (id < 0 || id >= static_cast<int64_t>(n_tokens)) {
    return OutOfRange(Key(key), " = ", id, " is out of range: the vocabulary has ", n_tokens,
                      " tokens");
  }
  return std::optional<int32_t>(static_cast<int32_t>(id));
}

Result<bool> GetBool(const Json& kv, std::string_view key, bool def) {
  const Json* v = Get(kv, key);
  if (v == nullptr) return def;
  if (!v->is_boolean()) return InvalidFormat(Key(key), " must be a bool");
  return v->get<bool>();
}

// JSON string literal of valid UTF-8 `s`.
void AppendQuoted(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      static const char kHex[] = "0123456789abcdef";
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

// The vocabulary read from the keys, validated (strings are views into the metadata).
struct GgufVocab {
  std::string model, pre;
  std::vector<std::string_view> tokens;
  std::vector<int32_t> types;  // GgufTokenType per token (NORMAL when the key is absent)
  std::vector<float> scores;
  std::vector<std::pair<std::string_view, std::string_view>> merges;
  std::optional<int32_t> bos, eos, unk, pad;
  bool add_bos = false, add_eos = false, add_space_prefix = true;
  std::string chat_template;
};

Result<GgufVocab> ReadVocab(const Json& kv) {
  GgufVocab v;
  const Json* model = Get(kv, "tokenizer.ggml.model");
  if (model == nullptr) return NotFound("the GGUF file has no tokenizer (no \"tokenizer.ggml.model\")");
  if (!model->is_string()) return InvalidFormat(Key("tokenizer.ggml.model"), " must be a string");
  v.model = model->get<std::string>();
  if (v.model != "gpt2" && v.model != "llama") {
    return Unsupported(Key("tokenizer.ggml.model"), " = \"", v.model,
                       "\" is not supported (gpt2: byte-level BPE, llama: SentencePiece BPE)");
  }
  if (const Json* pre = Get(kv, "tokenizer.ggml.pre")) {
    if (!pre->is_string()) return InvalidFormat(Key("tokenizer.ggml.pre"), " must be a string");
    v.pre = pre->get<std::string>();
  }

  PETREL_TRY(const Json* tokens, GetArray(kv, "tokenizer.ggml.tokens", true));
  PETREL_TRY(v.tokens, StringArray(*tokens, "tokenizer.ggml.tokens"));
  const size_t n = v.tokens.size();
  if (n == 0) return InvalidFormat(Key("tokenizer.ggml.tokens"), " is empty");
  if (n > (1u << 24)) return OutOfRange(Key("tokenizer.ggml.tokens"), " has ", n, " tokens (at most 2^24)");

  v.types.assign(n, static_cast<int32_t>(TT::kNormal));
  PETREL_TRY(const Json* types, GetArray(kv, "tokenizer.ggml.token_type", false));
  if (types != nullptr) {
    if (types->size() != n) {
      return InvalidFormat(Key("tokenizer.ggml.token_type"), " has ", types->size(),
                           " entries for ", n, " tokens");
    }
    for (size_t i = 0; i < n; ++i) {
      const Json& t = (*types)[i];
      if (!t.is_number_integer()) {
        return InvalidFormat(Key("tokenizer.ggml.token_type"), " must be an array of integers (element ",
                             i, " is a ", t.type_name(), ")");
      }
      const int64_t tt = t.get<int64_t>();
      if (tt < 0 || tt > 6) {
        return InvalidFormat(KeyAt("tokenizer.ggml.token_type", i), " = ", tt,
                             " is not a token type (0..6)");
      }
      v.types[i] = tt == 0 ? static_cast<int32_t>(TT::kNormal) : static_cast<int32_t>(tt);
    }
  }

  PETREL_TRY(const Json* scores, GetArray(kv, "tokenizer.ggml.scores", v.model == "llama"));
  if (scores != nullptr) {
    if (scores->size() != n) {
      return InvalidFormat(Key("tokenizer.ggml.scores"), " has ", scores->size(), " entries for ", n,
                           " tokens");
    }
    v.scores.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (!(*scores)[i].is_number()) {
        return InvalidFormat(Key("tokenizer.ggml.scores"), " must be an array of numbers (element ",
                             i, " is a ", (*scores)[i].type_name(), ")");
      }
      v.scores[i] = (*scores)[i].get<float>();
    }
  }

  PETREL_TRY(const Json* merges, GetArray(kv, "tokenizer.ggml.merges", v.model == "gpt2"));
  if (merges != nullptr && v.model == "gpt2") {
    PETREL_TRY(std::vector<std::string_view> list, StringArray(*merges, "tokenizer.ggml.merges"));
    v.merges.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      // llama.cpp splits at the first space after the first byte.
      const size_t sp = list[i].find(' ', 1);
      if (sp == std::string_view::npos) {
        return InvalidFormat(KeyAt("tokenizer.ggml.merges", i), " = \"", list[i],
                             "\" is not \"left right\"");
      }
      v.merges.emplace_back(list[i].substr(0, sp), list[i].substr(sp + 1));
    }
  }

  PETREL_TRY(v.bos, GetId(kv, "tokenizer.ggml.bos_token_id", n));
  PETREL_TRY(v.eos, GetId(kv, "tokenizer.ggml.eos_token_id", n));
  PETREL_TRY(v.unk, GetId(kv, "tokenizer.ggml.unknown_token_id", n));
  PETREL_TRY(v.pad, GetId(kv, "tokenizer.ggml.padding_token_id", n));
  PETREL_TRY(std::optional<int32_t> eot, GetId(kv, "tokenizer.ggml.eot_token_id", n));
  (void)eot;  // checked for range; generation stops on it through the model config
  const bool spm = v.model == "llama";
  if (spm) {
    // llama.cpp's SentencePiece defaults.
    if (!v.unk && n > 0 && v.types[0] == static_cast<int32_t>(TT::kUnknown)) v.unk = 0;
    if (!Get(kv, "tokenizer.ggml.bos_token_id") && n > 1) v.bos = 1;
    if (!Get(kv, "tokenizer.ggml.eos_token_id") && n > 2) v.eos = 2;
  }
  PETREL_TRY(v.add_bos, GetBool(kv, "tokenizer.ggml.add_bos_token", spm));
  PETREL_TRY(v.add_eos, GetBool(kv, "tokenizer.ggml.add_eos_token", false));
  PETREL_TRY(v.add_space_prefix, GetBool(kv, "tokenizer.ggml.add_space_prefix", true));
  if (v.add_bos && !v.bos) return InvalidFormat(Key("tokenizer.ggml.add_bos_token"), " is true but there is no bos_token_id");
  if (v.add_eos && !v.eos) return InvalidFormat(Key("tokenizer.ggml.add_eos_token"), " is true but there is no eos_token_id");
  if (const Json* t = Get(kv, "tokenizer.chat_template")) {
    if (!t->is_string()) return InvalidFormat(Key("tokenizer.chat_template"), " must be a string");
    v.chat_template = t->get<std::string>();
  }
  return v;
}

bool IsAdded(int32_t type) {
  return type == static_cast<int32_t>(TT::kControl) || type == static_cast<int32_t>(TT::kUserDefined) ||
         type == static_cast<int32_t>(TT::kUnknown);
}

// SentencePieceExtractor.extract: for every token (in id order) every split into two tokens,
// sorted by (left id, right id); then all of them stably by the merged token's score, highest
// first. Only NORMAL tokens are merge results (SentencePiece never builds control, byte or
// user-defined pieces by merging). Splits are at character boundaries (Python str slicing).
std::vector<std::pair<int32_t, int32_t>> MergesFromScores(const GgufVocab& v, const StringIdMap& ids) {
  struct M {
    int32_t l, r, merged;
  };
  std::vector<M> all;
  std::vector<M> local;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (v.types[id] != static_cast<int32_t>(TT::kNormal)) continue;
    const std::string_view t = v.tokens[id];
    local.clear();
    size_t k = 0;
    utf8::Next(t, k);
    while (k < t.size()) {
      const int32_t l = ids.Find(std::string_view(t).substr(0, k));
      const int32_t r = l < 0 ? -1 : ids.Find(std::string_view(t).substr(k));
      if (r >= 0) local.push_back({l, r, static_cast<int32_t>(id)});
      utf8::Next(t, k);
    }
    std::sort(local.begin(), local.end(),
              [](const M& a, const M& b) { return a.l != b.l ? a.l < b.l : a.r < b.r; });
    all.insert(all.end(), local.begin(), local.end());
  }
  std::stable_sort(all.begin(), all.end(), [&](const M& a, const M& b) {
    return v.scores[a.merged] > v.scores[b.merged];
  });
  std::vector<std::pair<int32_t, int32_t>> out;
  out.reserve(all.size());
  for (const M& m : all) out.emplace_back(m.l, m.r);
  return out;
}

Json TemplateProcessing(const GgufVocab& v) {
  Json single = Json::array();
  Json specials = Json::object();
  auto special = [&](int32_t id) {
    const std::string t(v.tokens[id]);
    single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
  };
  if (v.add_bos) special(*v.bos);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (v.add_eos) special(*v.eos);
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", specials}};
}

}  // namespace

Result<HfTokenizerFiles> GgufToHfTokenizer(const Json& kv) {
  PETREL_TRY(GgufVocab v, ReadVocab(kv));
  const bool spm = v.model == "llama";
  const size_t n = v.tokens.size();
  std::optional<PreSpec> pre;
  if (!spm) {
    pre = FindPre(v.pre);
    if (!pre) {
      return Unsupported(Key("tokenizer.ggml.pre"), " = \"", v.pre,
                         "\" is not a pre-tokenizer petrel knows (qwen2, llama-bpe, gpt-2, default)");
    }
  }

  // The BPE vocabulary: every token but the added ones of a byte-level model (Hugging Face
  // keeps those out of model.vocab) and duplicates (the first id keeps the string).
  StringIdMap ids;  // token -> id of the BPE vocabulary
  ids.Reserve(n);
  std::vector<uint8_t> in_vocab(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (!spm && (v.types[i] == static_cast<int32_t>(TT::kControl) ||
                 v.types[i] == static_cast<int32_t>(TT::kUserDefined))) {
      continue;
    }
    if (ids.Insert(v.tokens[i], static_cast<int32_t>(i))) in_vocab[i] = 1;
  }

  std::vector<std::pair<int32_t, int32_t>> merges;
  if (spm) {
    merges = MergesFromScores(v, ids);
  } else {
    merges.reserve(v.merges.size());
    std::string joined;
    for (size_t i = 0; i < v.merges.size(); ++i) {
      const auto& [a, b] = v.merges[i];
      const int32_t ia = ids.Find(a), ib = ids.Find(b);
      if (ia < 0 || ib < 0) {
        return InvalidFormat(KeyAt("tokenizer.ggml.merges", i), " = \"", a, " ", b, "\": \"",
                             ia < 0 ? a : b, "\" is not a token");
      }
      joined.assign(a).append(b);
      if (ids.Find(joined) < 0) {
        return InvalidFormat(KeyAt("tokenizer.ggml.merges", i), " = \"", a, " ", b,
                             "\": the merged token \"", joined, "\" is not a token");
      }
      merges.emplace_back(ia, ib);
    }
  }

  // Added tokens: control and unknown are special, user-defined are not (llama.cpp's meaning).
  std::string j = "{\"version\":\"1.0\",\"added_tokens\":[";
  bool first = true;
  for (size_t i = 0; i < n; ++i) {
    if (!IsAdded(v.types[i]) || v.tokens[i].empty()) continue;
    if (!first) j += ',';
    first = false;
    j += "{\"id\":" + std::to_string(i) + ",\"content\":";
    AppendQuoted(&j, v.tokens[i]);
    j += ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":";
    j += v.types[i] == static_cast<int32_t>(TT::kUserDefined) ? "false}" : "true}";
  }
  j += "]";

  Json normalizer, pre_tokenizer, decoder;  // null unless set
  if (spm) {
    Json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}};
    if (v.add_space_prefix) {
      normalizer = {{"type", "Sequence"},
                    {"normalizers", {{{"type", "Prepend"}, {"prepend", kSpace}}, replace}}};
    } else {
      normalizer = replace;
    }
    decoder = {{"type", "Sequence"},
               {"decoders",
                {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                 {{"type", "ByteFallback"}},
                 {{"type", "Fuse"}}}}};
    if (v.add_space_prefix) {
      decoder["decoders"].push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    }
  } else {
    if (pre->nfc) normalizer = {{"type", "NFC"}};
    Json byte_level = {{"type", "ByteLevel"},
                       {"add_prefix_space", false},
                       {"trim_offsets", false},
                       {"use_regex", pre->regex.empty()}};
    if (pre->regex.empty()) {
      pre_tokenizer = byte_level;
    } else {
      pre_tokenizer = {{"type", "Sequence"},
                       {"pretokenizers",
                        {{{"type", "Split"},
                          {"pattern", {{"Regex", pre->regex}}},
                          {"behavior", "Isolated"},
                          {"invert", false}},
                         byte_level}}};
    }
    decoder = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  }
  Json post = (v.add_bos || v.add_eos) ? TemplateProcessing(v) : Json();
  j += ",\"normalizer\":" + DumpJson(normalizer);
  j += ",\"pre_tokenizer\":" + DumpJson(pre_tokenizer);
  j += ",\"post_processor\":" + DumpJson(post);
  j += ",\"decoder\":" + DumpJson(decoder);

  // The model, with vocab and merges written straight to text (150k+ entries each).
  j += ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":";
  if (spm && v.unk) {
    AppendQuoted(&j, v.tokens[*v.unk]);
  } else {
    j += "null";
  }
  j += ",\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null";
  j += spm ? ",\"fuse_unk\":true,\"byte_fallback\":true" : ",\"fuse_unk\":false,\"byte_fallback\":false";
  j += (pre && pre->ignore_merges) ? ",\"ignore_merges\":true" : ",\"ignore_merges\":false";
  j += ",\"vocab\":{";
  first = true;
  for (size_t i = 0; i < n; ++i) {
    if (!in_vocab[i]) continue;
    if (!first) j += ',';
    first = false;
    AppendQuoted(&j, v.tokens[i]);
    j += ':' + std::to_string(i);
  }
  j += "},\"merges\":[";
  for (size_t i = 0; i < merges.size(); ++i) {
    if (i) j += ',';
    j += '[';
    AppendQuoted(&j, v.tokens[merges[i].first]);
    j += ',';
    AppendQuoted(&j, v.tokens[merges[i].second]);
    j += ']';
  }
  j += "]}}";

  Json cfg = {{"clean_up_tokenization_spaces", false}};
  auto name = [&](const std::optional<int32_t>& id) { return id ? Json(std::string(v.tokens[*id])) : Json(); };
  cfg["bos_token"] = name(v.bos);
  cfg["eos_token"] = name(v.eos);
  cfg["pad_token"] = name(v.pad);
  cfg["unk_token"] = name(v.unk);
  cfg["add_bos_token"] = v.add_bos;
  cfg["add_eos_token"] = v.add_eos;
  if (!v.chat_template.empty()) cfg["chat_template"] = v.chat_template;
  return HfTokenizerFiles{std::move(j), DumpJson(cfg)};
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromGgufMetadata(const Json& kv) {
  PETREL_TRY(HfTokenizerFiles f, GgufToHfTokenizer(kv));
  auto r = FromJson(f.tokenizer_json, f.tokenizer_config_json);
  if (!r.ok()) return r.error().WithContext("building the tokenizer from GGUF metadata");
  return r;
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json -> GGUF keys.

namespace {

// Every object of a component tree (a Sequence's children flattened), in order.
void Flatten(const Json& j, std::vector<const Json*>* out) {
  if (!j.is_object()) return;
  for (const char* list : {"pretokenizers", "normalizers", "decoders", "processors"}) {
    if (const Json* l = Find(j, list); l != nullptr && l->is_array()) {
      for (const Json& c : *l) Flatten(c, out);
      return;
    }
  }
  out->push_back(&j);
}

std::vector<const Json*> Components(const Json& root, std::string_view key) {
  std::vector<const Json*> out;
  if (const Json* c = Find(root, key)) Flatten(*c, &out);
  return out;
}

std::string TypeOf(const Json* c) {
  const Json* t = Find(*c, "type");
  return t != nullptr && t->is_string() ? t->get<std::string>() : std::string();
}

// bos_token etc. of tokenizer_config.json: a string or {"content": ...}.
std::string ConfigTokenName(const Json& cfg, std::string_view key) {
  const Json* v = Find(cfg, key);
  if (v == nullptr) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    if (const Json* c = Find(*v, "content"); c != nullptr && c->is_string()) return c->get<std::string>();
  }
  return "";
}

}  // namespace

Status HfTokenizerToGguf(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                         const GgufVocabOptions& opts, OrderedJson* kv) {
  PETREL_TRY(Json root, ParseJson(tokenizer_json, "tokenizer.json"));
  Json cfg = Json::object();
  if (!tokenizer_config_json.empty()) {
    PETREL_TRY(cfg, ParseJson(tokenizer_config_json, "tokenizer_config.json"));
  }
  const Json* model = Find(root, "model");
  if (model == nullptr || !model->is_object()) return InvalidFormat("tokenizer.json: missing \"model\"");
  PETREL_TRY(std::string type, GetStringOr(*model, "type", "model", "BPE"));
  if (type != "BPE") {
    return Unsupported("GGUF export: tokenizer.json model type \"", type, "\" (BPE only)");
  }
  const Json* vocab = Find(*model, "vocab");
  const Json* merges = Find(*model, "merges");
  if (vocab == nullptr || !vocab->is_object()) return FormatError("model", "missing object \"vocab\"");
  if (merges == nullptr || !merges->is_array()) return FormatError("model", "missing array \"merges\"");

  // Dense token list: vocab, then added tokens (which win on a shared id), padded.
  int64_t n = opts.min_tokens;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() >= (1 << 24)) {
      return FormatError("model.vocab", "bad id for \"", it.key(), "\"");
    }
    n = std::max<int64_t>(n, it->get<int64_t>() + 1);
  }
  const Json* added = Find(root, "added_tokens");
  if (added != nullptr && !added->is_array()) return FormatError("added_tokens", "must be an array");
  if (added != nullptr) {
    for (const Json& a : *added) {
      const Json* id = Find(a, "id");
      if (id == nullptr || !id->is_number_integer() || id->get<int64_t>() < 0 || id->get<int64_t>() >= (1 << 24)) {
        return FormatError("added_tokens", "entry without a valid id");
      }
      n = std::max<int64_t>(n, id->get<int64_t>() + 1);
    }
  }
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, 0);
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    const int64_t id = it->get<int64_t>();
    tokens[id] = it.key();
    types[id] = static_cast<int32_t>(TT::kNormal);
  }
  if (added != nullptr) {
    for (const Json& a : *added) {
      const int64_t id = Find(a, "id")->get<int64_t>();
      PETREL_TRY(tokens[id], GetString(a, "content", "added_tokens"));
      PETREL_TRY(bool special, GetBoolOr(a, "special", "added_tokens", false));
      types[id] = static_cast<int32_t>(special ? TT::kControl : TT::kUserDefined);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (types[i] == 0) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = static_cast<int32_t>(TT::kUnused);
    }
  }
  std::unordered_map<std::string_view, int32_t> id_of;
  for (int64_t i = n - 1; i >= 0; --i) id_of[tokens[i]] = static_cast<int32_t>(i);  // lowest id wins

  // Merges as (left, right) strings.
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) return FormatError("model.merges[" + std::to_string(i) + "]", "no space");
      pairs.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      pairs.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return FormatError("model.merges[" + std::to_string(i) + "]", "must be \"a b\" or [\"a\", \"b\"]");
    }
  }

  // Which family: byte-level (gpt2) or SentencePiece-style (llama).
  const auto pres = Components(root, "pre_tokenizer");
  const auto norms = Components(root, "normalizer");
  const auto decs = Components(root, "decoder");
  bool byte_level = false, metaspace = false, prepend = false;
  const Json* split = nullptr;
  bool byte_level_regex = false;
  for (const Json* p : pres) {
    const std::string t = TypeOf(p);
    if (t == "ByteLevel") {
      byte_level = true;
      PETREL_TRY(byte_level_regex, GetBoolOr(*p, "use_regex", "pre_tokenizer", true));
    } else if (t == "Split") {
      if (split != nullptr) return Unsupported("GGUF export: more than one Split pre-tokenizer");
      split = p;
    } else if (t == "Metaspace") {
      metaspace = true;
      PETREL_TRY(std::string scheme, GetStringOr(*p, "prepend_scheme", "pre_tokenizer", "always"));
      PETREL_TRY(bool aps, GetBoolOr(*p, "add_prefix_space", "pre_tokenizer", true));
      prepend = scheme != "never" && aps;
    } else {
      return Unsupported("GGUF export: pre-tokenizer \"", t, "\" has no GGUF equivalent");
    }
  }
  for (const Json* d : decs) byte_level = byte_level || TypeOf(d) == "ByteLevel";
  for (const Json* nz : norms) {
    if (TypeOf(nz) == "Prepend") prepend = true;
  }
  PETREL_TRY(bool byte_fallback, GetBoolOr(*model, "byte_fallback", "model", false));
  const bool spm = !byte_level && (byte_fallback || metaspace || prepend);
  if (!byte_level && !spm) {
    return Unsupported("GGUF export: the tokenizer is neither byte-level BPE (gpt2) nor "
                       "SentencePiece-style BPE (llama)");
  }

  OrderedJson& out = *kv;
  out["tokenizer.ggml.model"] = spm ? "llama" : "gpt2";
  if (!spm) {
    std::string pre;
    if (split == nullptr) {
      if (!byte_level_regex) return Unsupported("GGUF export: ByteLevel without a split regex");
      pre = "gpt-2";
    } else {
      const Json* pat = Find(*split, "pattern");
      const Json* re = pat != nullptr ? Find(*pat, "Regex") : nullptr;
      const std::string r = re != nullptr && re->is_string() ? re->get<std::string>() : "";
      if (r == kQwen2Regex) {
        pre = "qwen2";
      } else if (r == kLlama3Regex) {
        pre = "llama-bpe";
      } else {
        return Unsupported("GGUF export: the pre-tokenizer split regex is not one llama.cpp knows by "
                           "name (petrel writes qwen2, llama-bpe, gpt-2): ", r);
      }
    }
    out["tokenizer.ggml.pre"] = pre;
  }
  out["tokenizer.ggml.tokens"] = tokens;

  if (spm) {
    // Scores that rebuild the same merge order (MergesFromScores): a merged token scores minus
    // the rank of its first merge; other normal tokens come after every merge result.
    std::vector<float> scores(n, 0.0f);
    std::vector<int64_t> first_rank(n, -1);
    for (size_t r = 0; r < pairs.size(); ++r) {
      auto it = id_of.find(pairs[r].first + pairs[r].second);
      if (it == id_of.end()) {
        return FormatError("model.merges[" + std::to_string(r) + "]", "merged token is not in the vocabulary");
      }
      if (first_rank[it->second] < 0) first_rank[it->second] = static_cast<int64_t>(r);
    }
    PETREL_TRY(std::string unk, GetStringOr(*model, "unk_token", "model", ""));
    for (int64_t i = 0; i < n; ++i) {
      if (types[i] != static_cast<int32_t>(TT::kNormal)) continue;
      const std::string& t = tokens[i];
      if (byte_fallback && t.size() == 6 && t.starts_with("<0x") && t.ends_with(">")) {
        types[i] = static_cast<int32_t>(TT::kByte);
      } else if (!unk.empty() && t == unk) {
        types[i] = static_cast<int32_t>(TT::kUnknown);
      } else {
        scores[i] = first_rank[i] >= 0 ? -static_cast<float>(first_rank[i])
                                       : -static_cast<float>(pairs.size() + i);
      }
    }
    if (!unk.empty()) {
      if (auto it = id_of.find(unk); it != id_of.end()) {
        types[it->second] = static_cast<int32_t>(TT::kUnknown);
        out["tokenizer.ggml.unknown_token_id"] = static_cast<uint64_t>(it->second);
      }
    }
    out["tokenizer.ggml.scores"] = scores;
    out["tokenizer.ggml.add_space_prefix"] = prepend;
  } else {
    std::vector<std::string> merge_strings;
    merge_strings.reserve(pairs.size());
    for (const auto& [a, b] : pairs) {
      if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos) {
        return Unsupported("GGUF export: merge \"", a, "\" + \"", b, "\" contains a space");
      }
      merge_strings.push_back(a + " " + b);
    }
    out["tokenizer.ggml.merges"] = merge_strings;
  }
  out["tokenizer.ggml.token_type"] = types;

  // Special ids: tokenizer_config.json names first, then the caller's (config.json) ids.
  auto named = [&](std::string_view key) -> std::optional<int32_t> {
    const std::string s = ConfigTokenName(cfg, key);
    if (s.empty()) return std::nullopt;
    auto it = id_of.find(s);
    return it == id_of.end() ? std::nullopt : std::optional<int32_t>(it->second);
  };
  std::optional<int32_t> bos = named("bos_token"), eos = named("eos_token"), pad = named("pad_token");
  if (!bos) bos = opts.bos_id;
  if (!eos) eos = opts.eos_id;
  if (bos) out["tokenizer.ggml.bos_token_id"] = static_cast<uint64_t>(*bos);
  if (eos) out["tokenizer.ggml.eos_token_id"] = static_cast<uint64_t>(*eos);
  if (opts.eot_id && opts.eot_id != eos) out["tokenizer.ggml.eot_token_id"] = static_cast<uint64_t>(*opts.eot_id);
  if (pad) out["tokenizer.ggml.padding_token_id"] = static_cast<uint64_t>(*pad);

  // add_bos / add_eos from what the post-processor really does to an empty input.
  PETREL_TRY(auto tok, Tokenizer::FromJson(tokenizer_json, tokenizer_config_json));
  PETREL_TRY(std::vector<int32_t> wrap, tok->Encode("", {}));
  bool add_bos = false, add_eos = false;
  size_t used = 0;
  if (!wrap.empty() && bos && wrap.front() == *bos) {
    add_bos = true;
    used = 1;
  }
  if (wrap.size() > used && eos && wrap.back() == *eos) {
    add_eos = true;
    ++used;
  }
  if (used != wrap.size()) {
    return Unsupported("GGUF export: the post-processor adds ", wrap.size(),
                       " special ids that GGUF cannot express (only BOS first and EOS last)");
  }
  out["tokenizer.ggml.add_bos_token"] = add_bos;
  out["tokenizer.ggml.add_eos_token"] = add_eos;
  if (!opts.chat_template.empty()) out["tokenizer.chat_template"] = opts.chat_template;
  return OkStatus();
}

}  // namespace petrel::tokenizer
