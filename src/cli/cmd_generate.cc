// `petrel generate`: one prompt through the engine, streamed to stdout as it is produced.
#include <chrono>
#include <cstdio>
#include <future>
#include <string>

#include "cli/chat_prompt.h"
#include "cli/model_text.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "core/json_util.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace petrel::cli {

int ReportError(const Error& e) {
  std::fprintf(stderr, "petrel: %s\n", e.ToString().c_str());
  return e.code == ErrorCode::kInvalidArgument ? 2 : 1;
}

int RunGenerate(int argc, char** argv) {
  std::string prompt, ids_arg;
  std::vector<std::string> loras;
  int max_tokens = 128;
  float temperature = -1, top_p = -1, min_p = -1, repetition_penalty = -1;
  int top_k = -2;
  int64_t seed = -1;
  bool ignore_eos = false, json = false, chat = false;
  ModelFlags mf;
  Flags f("petrel generate MODEL_DIR (--prompt TEXT | --ids 1,2,3) [flags]");
  f.Add("prompt", &prompt, "prompt text (tokenized with the model's tokenizer)")
      .Add("ids", &ids_arg, "prompt as token ids, comma-separated")
      .Add("max-tokens", &max_tokens, "tokens to generate (default 128)")
      .Add("temperature", &temperature, "0 = greedy (default: generation_config.json)")
      .Add("top-p", &top_p, "nucleus sampling mass")
      .Add("top-k", &top_k, "keep the k most likely tokens (0 = off)")
      .Add("min-p", &min_p, "keep tokens with p >= min_p * p_max")
      .Add("repetition-penalty", &repetition_penalty, "HF repetition penalty (1 = off)")
      .Add("seed", &seed, "RNG seed (same seed, same output)")
      .AddSwitch("ignore-eos", &ignore_eos, "keep generating past EOS")
      .AddSwitch("chat", &chat, "send --prompt as a user message through the model's chat template")
      .AddSwitch("json", &json, "print {\"ids\": [...], \"text\": \"...\"} as the last line")
      .Add("lora", &loras, "LoRA adapter directory (PEFT or MLX-LM) applied at run time");
  mf.Register(f);
  if (auto st = f.Parse(argc, argv); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || (prompt.empty() == ids_arg.empty())) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  const std::string dir = f.positional()[0];

  auto tok = LoadTokenizer(dir);
  std::vector<int32_t> ids;
  if (!ids_arg.empty()) {
    auto r = ParseIdList(ids_arg);
    if (!r.ok()) return ReportError(r.error());
    ids = *r;
  } else {
    if (!tok.ok()) return ReportError(tok.error());
    Result<std::vector<int32_t>> r = std::vector<int32_t>{};
    if (chat) {
      auto tpl = LoadChatTemplate(dir);
      if (!tpl.ok()) return ReportError(tpl.error());
      Json messages = Json::array({Json{{"role", "user"}, {"content", prompt}}});
      r = ChatPromptIds(**tok, *tpl, messages, Json::object());
    } else {
      r = (*tok)->Encode(prompt);
    }
    if (!r.ok()) return ReportError(r.error());
    ids = *r;
  }
  auto model = model::LoadModel(dir, mf.ToLoadOptions());
  if (!model.ok()) return ReportError(model.error());
  runtime::EngineOptions eo;
  eo.max_num_seqs = 1;
  eo.max_model_len = (int)std::min<int64_t>((*model)->config().max_position_embeddings,
                                            (int64_t)ids.size() + max_tokens);
  eo.max_num_batched_tokens = std::max<int>(2048, (int)ids.size());
  auto engine = runtime::Engine::Create(std::move(model).value(), eo);
  if (!engine.ok()) return ReportError(engine.error());
  const auto& info = (*engine)->model_info();
  if (loras.size() > 1)
    return ReportError(InvalidArgument("generate takes one --lora (petrel merge can fold several into a model)"));
  if (!loras.empty()) {
    if (auto st = (*engine)->LoadAdapter("lora", loras[0]); !st.ok()) return ReportError(st.error());
  }

  runtime::GenerateRequest req;
  req.prompt = ids;
  req.max_new_tokens = max_tokens;
  req.sampling = info.default_sampling;
  if (temperature >= 0) req.sampling.temperature = temperature;
  if (top_p >= 0) req.sampling.top_p = top_p;
  if (top_k >= -1) req.sampling.top_k = top_k;
  if (min_p >= 0) req.sampling.min_p = min_p;
  if (repetition_penalty >= 0) req.sampling.repetition_penalty = repetition_penalty;
  if (seed >= 0) req.sampling.seed = (uint64_t)seed;
  req.eos_token_ids = info.eos_token_ids;
  req.ignore_eos = ignore_eos;
  if (!loras.empty()) req.adapter = "lora";

  std::unique_ptr<tokenizer::IncrementalDetokenizer> detok;
  if (tok.ok()) detok = std::make_unique<tokenizer::IncrementalDetokenizer>(**tok, false);
  std::vector<int32_t> out_ids;
  std::promise<runtime::RequestUpdate> done;
  const auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point t_first;
  auto r = (*engine)->Submit(req, [&](runtime::RequestUpdate u) {
    for (const auto& t : u.tokens) {
      if (out_ids.empty()) t_first = std::chrono::steady_clock::now();
      out_ids.push_back(t.token);
      if (detok && !json) {
        std::string s = detok->Push(t.token);
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
      }
    }
    if (u.finished) done.set_value(std::move(u));
  });
  if (!r.ok()) return ReportError(r.error());
  runtime::RequestUpdate last = done.get_future().get();
  const auto t1 = std::chrono::steady_clock::now();
  if (detok && !json) {
    std::string s = detok->Flush();
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fputc('\n', stdout);
  }
  if (last.reason == runtime::FinishReason::kError) return ReportError(Error{ErrorCode::kInternal, last.error});
  const double prefill_s = std::chrono::duration<double>(t_first - t0).count();
  const double decode_s = std::chrono::duration<double>(t1 - t_first).count();
  std::fprintf(stderr, "\nprompt: %zu tokens in %.3f s (%.1f tok/s); generated: %zu tokens (%.2f tok/s), finish: %s\n",
               ids.size(), prefill_s, ids.size() / prefill_s, out_ids.size(),
               out_ids.size() > 1 ? (out_ids.size() - 1) / decode_s : 0.0,
               runtime::FinishReasonName(last.reason));
  if (json) {
    Json j;
    j["ids"] = out_ids;
    std::string text;
    if (tok.ok()) {
      auto d = (*tok)->Decode(out_ids);
      if (d.ok()) text = *d;
    }
    j["text"] = text;
    std::printf("%s\n", DumpJson(j).c_str());
  }
  return 0;
}

}  // namespace petrel::cli
