// `petrel template MODEL_DIR --messages MESSAGES.json [--tools TOOLS.json]
//  [--add-generation-prompt] [--kwargs JSON] [--now UNIX_SECONDS]`
// Renders the model's chat template and writes the prompt to stdout byte for byte (nothing added),
// for comparison with transformers' apply_chat_template(..., tokenize=False).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/model_text.h"
#include "core/json_util.h"
#include "template/chat_template.h"

namespace petrel::cli {

namespace {

Result<petrel::OrderedJson> ReadOrderedJsonFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open ", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ParseOrderedJson(ss.str(), path);
}

Status Run(int argc, char** argv) {
  std::string messages_path, tools_path, kwargs_text, now_text;
  bool add_generation_prompt = false;
  Flags flags(
      "petrel template MODEL_DIR --messages MESSAGES.json [--tools TOOLS.json] "
      "[--add-generation-prompt] [--kwargs JSON]");
  flags.Add("messages", &messages_path, "JSON file with an array of OpenAI-style messages")
      .Add("tools", &tools_path, "JSON file with an OpenAI tools array")
      .AddSwitch("add-generation-prompt", &add_generation_prompt,
                 "append the assistant turn header (add_generation_prompt=True)")
      .Add("kwargs", &kwargs_text,
           "extra template variables as a JSON object, e.g. "
           "'{\"enable_thinking\": false}'")
      .Add("now", &now_text, "fixed time for strftime_now(), seconds since the epoch (UTC)");
  PETREL_TRY(flags.Parse(argc, argv));
  if (flags.help()) {
    std::fprintf(stdout, "%s", flags.Usage().c_str());
    return OkStatus();
  }
  if (flags.positional().size() != 1)
    return InvalidArgument("expected one MODEL_DIR\n", flags.Usage());
  if (messages_path.empty()) return InvalidArgument("--messages is required\n", flags.Usage());

  PETREL_TRY(auto tpl, LoadChatTemplate(flags.positional()[0]));
  PETREL_TRY(petrel::OrderedJson messages, ReadOrderedJsonFile(messages_path));
  // Accept either a bare array or {"messages": [...]} (a request body).
  if (messages.is_object() && messages.contains("messages")) messages = messages["messages"];
  petrel::OrderedJson tools = nullptr;
  if (!tools_path.empty()) {
    PETREL_TRY(tools, ReadOrderedJsonFile(tools_path));
  }
  jinja::ApplyOptions opts;
  opts.add_generation_prompt = add_generation_prompt;
  if (!kwargs_text.empty()) {
    PETREL_TRY(opts.kwargs, ParseJson(kwargs_text, "--kwargs"));
    if (!opts.kwargs.is_object()) return InvalidArgument("--kwargs must be a JSON object");
  }
  if (!now_text.empty()) {
    char* end = nullptr;
    const long long t = std::strtoll(now_text.c_str(), &end, 10);
    if (end != now_text.c_str() + now_text.size())
      return InvalidArgument("--now: expected an integer");
    opts.now_unix_seconds = t;
  }
  PETREL_TRY(std::string prompt, tpl.Apply(messages, tools, opts));
  if (std::fwrite(prompt.data(), 1, prompt.size(), stdout) != prompt.size() ||
      std::fflush(stdout) != 0) {
    return IoError("writing to stdout failed");
  }
  return OkStatus();
}

}  // namespace

int RunTemplate(int argc, char** argv) {
  const Status s = Run(argc, argv);
  if (!s.ok()) {
    std::fprintf(stderr, "petrel template: %s\n", s.error().ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace petrel::cli
