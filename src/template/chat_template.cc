// ChatTemplate (see chat_template.h): locating the template in a model directory and assembling
// the variables transformers passes to it.
#include "template/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace petrel::jinja {

namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open ", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return IoError("cannot read ", path);
  return ss.str();
}

// bos_token / eos_token may be a string, null, or an AddedToken dict {"content": ...}.
std::string TokenString(const petrel::Json& cfg, const char* key) {
  const auto it = cfg.find(key);
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return "";
}

// Parses the "chat_template" field: a string, or a list of {"name", "template"}.
Result<std::vector<std::pair<std::string, std::string>>> TemplatesFromField(
    const petrel::Json& field, const std::string& what) {
  std::vector<std::pair<std::string, std::string>> out;
  if (field.is_string()) {
    out.emplace_back("default", field.get<std::string>());
    return out;
  }
  if (field.is_array()) {
    for (const auto& e : field) {
      if (!e.is_object() || !e.contains("name") || !e.contains("template") ||
          !e["name"].is_string() || !e["template"].is_string()) {
        return InvalidFormat(what, ": chat_template list entries must be {name, template} strings");
      }
      out.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
    }
    if (!out.empty()) return out;
  }
  return NotFound(what, ": no chat_template");
}

}  // namespace

// Lookup order mirrors transformers: chat_template.jinja, then chat_template.json, then the
// tokenizer_config.json field.
Result<ChatTemplate> ChatTemplate::FromModelDir(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  petrel::Json cfg = petrel::Json::object();
  const fs::path cfg_path = dir / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(cfg_path, ec)) {
    PETREL_TRY(cfg, ReadJsonFile(cfg_path.string()));
    if (!cfg.is_object()) return InvalidFormat(cfg_path.string(), ": expected a JSON object");
  }
  std::vector<std::pair<std::string, std::string>> sources;
  const fs::path jinja_path = dir / "chat_template.jinja";
  const fs::path json_path = dir / "chat_template.json";
  if (fs::exists(jinja_path, ec)) {
    PETREL_TRY(std::string src, ReadFile(jinja_path.string()));
    sources.emplace_back("default", std::move(src));
  } else if (fs::exists(json_path, ec)) {
    PETREL_TRY(petrel::Json j, ReadJsonFile(json_path.string()));
    if (!j.is_object() || !j.contains("chat_template")) {
      return InvalidFormat(json_path.string(), ": no \"chat_template\" field");
    }
    PETREL_TRY(sources, TemplatesFromField(j["chat_template"], json_path.string()));
  } else if (cfg.contains("chat_template") && !cfg["chat_template"].is_null()) {
    PETREL_TRY(sources, TemplatesFromField(cfg["chat_template"], cfg_path.string()));
  } else {
    return NotFound(model_dir,
                    ": no chat template (looked for chat_template.jinja, "
                    "chat_template.json and tokenizer_config.json \"chat_template\")");
  }
  ChatTemplate t;
  t.bos_token_ = TokenString(cfg, "bos_token");
  t.eos_token_ = TokenString(cfg, "eos_token");
  for (auto& [name, src] : sources) {
    auto parsed = Template::Parse(src);
    if (!parsed.ok())
      return parsed.error().WithContext(model_dir + ": chat template '" + name + "'");
    t.templates_.push_back(std::move(parsed).value());
  }
  // A list without "default" still needs one for tool-less requests: transformers raises; we
  // do too, unless there is exactly one template.
  t.sources_ = std::move(sources);
  bool has_default = false;
  for (const auto& [name, src] : t.sources_) has_default = has_default || name == "default";
  if (!has_default && t.sources_.size() > 1) {
    return InvalidFormat(model_dir, ": chat_template list has no \"default\" entry");
  }
  return t;
}

Result<ChatTemplate> ChatTemplate::FromSource(std::string source, std::string bos_token,
                                              std::string eos_token) {
  PETREL_TRY(Template tpl, Template::Parse(source));
  ChatTemplate t;
  t.sources_.emplace_back("default", std::move(source));
  t.templates_.push_back(std::move(tpl));
  t.bos_token_ = std::move(bos_token);
  t.eos_token_ = std::move(eos_token);
  return t;
}

// Builds the template variables in transformers' order (messages, tools, add_generation_prompt,
// special tokens, then kwargs, which may override the rest) and renders.
Result<std::string> ChatTemplate::Apply(const petrel::OrderedJson& messages,
                                        const petrel::OrderedJson& tools,
                                        const ApplyOptions& opts) const {
  if (!messages.is_array()) return InvalidArgument("messages must be an array");
  if (!tools.is_null() && !tools.is_array())
    return InvalidArgument("tools must be an array or null");
  const bool has_tools = tools.is_array() && !tools.empty();
  // Pick the named template: "tool_use" with tools when present, else "default".
  size_t pick = 0;
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (sources_[i].first == "default") pick = i;
  }
  if (has_tools) {
    for (size_t i = 0; i < sources_.size(); ++i) {
      if (sources_[i].first == "tool_use") pick = i;
    }
  }

  petrel::OrderedJson msgs = messages;
  if (opts.parse_tool_call_arguments) {
    for (auto& m : msgs) {
      if (!m.is_object() || !m.contains("tool_calls") || !m["tool_calls"].is_array()) continue;
      for (auto& call : m["tool_calls"]) {
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
          continue;
        auto& fn = call["function"];
        if (fn.contains("arguments") && fn["arguments"].is_string()) {
          PETREL_TRY(auto parsed, ParseOrderedJson(fn["arguments"].get<std::string>(),
                                                   "tool_calls[].function.arguments"));
          fn["arguments"] = std::move(parsed);
        }
      }
    }
  }

  Value vars = Value::MakeDict();
  Dict& d = vars.mutable_dict();
  try {
    d.Set(Value("messages"), Value::FromJson(msgs));
    d.Set(Value("tools"), tools.is_null() ? Value::None() : Value::FromJson(tools));
    d.Set(Value("add_generation_prompt"), Value(opts.add_generation_prompt));
    if (!bos_token_.empty()) d.Set(Value("bos_token"), Value(bos_token_));
    if (!eos_token_.empty()) d.Set(Value("eos_token"), Value(eos_token_));
    if (!opts.kwargs.is_null()) {
      if (!opts.kwargs.is_object()) return InvalidArgument("template kwargs must be a JSON object");
      for (auto it = opts.kwargs.begin(); it != opts.kwargs.end(); ++it) {
        d.Set(Value(it.key()), Value::FromJson(it.value()));
      }
    }
  } catch (const TemplateException& e) {
    return InvalidArgument("chat template input: ", e.message);
  }
  RenderOptions ro;
  ro.limits = opts.limits;
  ro.now_unix_seconds = opts.now_unix_seconds;
  auto out = templates_[pick].Render(vars, ro);
  if (!out.ok()) return out.error().WithContext("chat template");
  return out;
}

Result<std::string> ChatTemplate::Apply(const petrel::Json& messages, const petrel::Json& tools,
                                        const ApplyOptions& opts) const {
  return Apply(petrel::OrderedJson(messages), petrel::OrderedJson(tools), opts);
}

}  // namespace petrel::jinja
