// `petrel chat`: an interactive, multi-turn chat in the terminal, streamed, with the model's own
// chat template. /reset clears the history, /system TEXT sets the system prompt, /quit leaves;
// Ctrl-C stops the reply being generated (a second Ctrl-C at the prompt leaves).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>
#include <string>

#include "cli/chat_prompt.h"
#include "cli/model_text.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "core/json_util.h"
#include "runtime/engine.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace petrel::cli {

namespace {
std::atomic<bool> g_interrupt{false};  // set by SIGINT; the only state a signal handler may touch
extern "C" void OnSigint(int) { g_interrupt.store(true); }
}  // namespace

Result<std::vector<int32_t>> ChatPromptIds(const tokenizer::Tokenizer& tok, const jinja::ChatTemplate& tpl,
                                           const Json& messages, const Json& kwargs) {
  jinja::ApplyOptions opts;
  opts.add_generation_prompt = true;
  opts.kwargs = kwargs;
  PETREL_TRY(std::string prompt, tpl.Apply(messages, Json(nullptr), opts));
  // As apply_chat_template(tokenize=True): the template already holds the special tokens.
  return tok.Encode(prompt, tokenizer::EncodeOptions{.add_special_tokens = false});
}

int RunChat(int argc, char** argv) {
  std::string system, lora;
  int max_tokens = 1024;
  float temperature = -1;
  int64_t seed = -1;
  bool no_thinking = false;
  ModelFlags mf;
  Flags f("petrel chat MODEL_DIR [--system TEXT] [--max-tokens N] [--temperature T] [--lora PATH]");
  f.Add("system", &system, "system prompt")
      .Add("max-tokens", &max_tokens, "reply length limit (default 1024)")
      .Add("temperature", &temperature, "0 = greedy (default: generation_config.json)")
      .Add("seed", &seed, "RNG seed")
      .Add("lora", &lora, "LoRA adapter directory (PEFT or MLX-LM)")
      .AddSwitch("no-thinking", &no_thinking, "pass enable_thinking=false to the template");
  mf.Register(f);
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  const std::string dir = f.positional()[0];
  auto tok = LoadTokenizer(dir);
  if (!tok.ok()) return ReportError(tok.error());
  auto tpl = LoadChatTemplate(dir);
  if (!tpl.ok()) return ReportError(tpl.error());
  auto model = model::LoadModel(dir, mf.ToLoadOptions());
  if (!model.ok()) return ReportError(model.error());
  runtime::EngineOptions eo;
  eo.max_num_seqs = 1;
  auto engine = runtime::Engine::Create(std::move(model).value(), eo);
  if (!engine.ok()) return ReportError(engine.error());
  if (!lora.empty()) {
    if (auto st = (*engine)->LoadAdapter("lora", lora); !st.ok()) return ReportError(st.error());
  }
  const auto& info = (*engine)->model_info();
  std::signal(SIGINT, OnSigint);

  Json kwargs = Json::object();
  if (no_thinking) kwargs["enable_thinking"] = false;
  Json history = Json::array();
  std::fprintf(stderr, "petrel chat — /reset, /system TEXT, /quit; Ctrl-C stops a reply\n");
  while (true) {
    std::fprintf(stderr, "> ");
    std::fflush(stderr);
    g_interrupt.store(false);
    std::string line;
    if (!std::getline(std::cin, line) || g_interrupt.load()) break;
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      history = Json::array();
      std::fprintf(stderr, "(history cleared)\n");
      continue;
    }
    if (line.rfind("/system", 0) == 0) {
      system = line.size() > 8 ? line.substr(8) : "";
      history = Json::array();
      std::fprintf(stderr, "(system prompt set; history cleared)\n");
      continue;
    }
    Json messages = Json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    for (const auto& m : history) messages.push_back(m);
    messages.push_back({{"role", "user"}, {"content", line}});
    auto ids = ChatPromptIds(**tok, *tpl, messages, kwargs);
    if (!ids.ok()) {
      std::fprintf(stderr, "petrel: %s\n", ids.error().ToString().c_str());
      continue;
    }
    runtime::GenerateRequest req;
    req.prompt = *ids;
    req.max_new_tokens = std::max(1, std::min<int>(max_tokens, info.max_model_len - (int)ids->size()));
    req.sampling = info.default_sampling;
    if (temperature >= 0) req.sampling.temperature = temperature;
    if (seed >= 0) req.sampling.seed = (uint64_t)seed;
    req.eos_token_ids = info.eos_token_ids;
    if (!lora.empty()) req.adapter = "lora";
    tokenizer::IncrementalDetokenizer detok(**tok, /*skip_special_tokens=*/true);
    std::string reply;
    std::promise<void> done;
    auto id = (*engine)->Submit(req, [&](runtime::RequestUpdate u) {
      for (const auto& t : u.tokens) {
        std::string s = detok.Push(t.token);
        reply += s;
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
      }
      if (u.finished) done.set_value();
    });
    if (!id.ok()) {
      std::fprintf(stderr, "petrel: %s\n", id.error().ToString().c_str());
      continue;
    }
    auto fut = done.get_future();
    while (fut.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      if (g_interrupt.exchange(false)) (*engine)->Abort(*id);
    }
    std::string tail = detok.Flush();
    reply += tail;
    std::printf("%s\n", tail.c_str());
    history.push_back({{"role", "user"}, {"content", line}});
    history.push_back({{"role", "assistant"}, {"content", reply}});
  }
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace petrel::cli
