// The engine: one model, one paged KV cache, one scheduler loop on its own thread (continuous
// batching). Clients Submit() requests from any thread and receive RequestUpdate callbacks on the
// engine thread. Abort() may be called from any thread (also from inside a callback); the request's
// KV blocks are freed at the next step and it gets a final update with FinishReason::kAbort.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/request.h"

namespace petrel::model { class Model; }

namespace petrel::runtime {

struct EngineOptions {
  int max_num_seqs = 256;             // sequences running at once
  int max_num_batched_tokens = 2048;  // tokens per step (prefill chunks + decodes)
  int max_model_len = 0;              // 0 = the model's max_position_embeddings
  int64_t kv_cache_bytes = 0;         // CPU: exact KV pool bytes (0 = from max_model_len *
                                      // max_num_seqs, capped); device: a cap on the pool
  double gpu_memory_utilization = 0.9;  // device: share of device memory for weights,
                                        // activations and the KV pool (kv_plan.h)
  int block_size = 16;                // tokens per KV block
  int max_waiting = 1024;             // queued requests beyond this are refused (HTTP 429)
  bool enable_prefix_caching = true;
  int n_threads = 0;                  // CPU threads; 0 = all available (used by the loader)
  std::string kv_cache_dtype = "auto";  // "auto" (f32 on the CPU, bf16 on a device), "f32", "bf16",
                                        // "int8" (CPU: per-token, per-head scale; core/kv_quant.h)
  int max_loras = 8;                  // LoRA adapters resident at once (--max-loras); LRU beyond
  // Pipelined greedy decoding (engine.cc, RunPipelined): "auto" where the backend feeds a step's
  // tokens from the previous step's ids on the device (CUDA), "on" on any backend (the CPU's
  // waits for each step anyway: for tests), "off". PETREL_PIPELINE_DECODE overrides it.
  std::string pipeline_decode = "auto";
};

// One registered LoRA adapter, as ListAdapters() reports it.
struct AdapterInfo {
  std::string name;
  std::string path;          // directory it is (re)loaded from
  std::string format;        // "peft" or "mlx"
  int64_t max_rank = 0;
  int64_t bytes = 0;         // memory its weights hold while resident (f32)
  bool resident = false;     // false after an LRU eviction: reloaded from `path` on next use
  int in_flight = 0;         // requests currently holding this load of it
  uint64_t generation = 0;   // id of the load; changes whenever it is (re)loaded
};

// Numbers for /metrics and the start-up log.
struct EngineStats {
  int running = 0;
  int waiting = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up
  int64_t prefix_cache_hits = 0;     // prompt tokens found
  int64_t prompt_tokens_total = 0;
  int64_t generation_tokens_total = 0;
  int64_t preemptions_total = 0;
  int64_t requests_finished_total = 0;
  int64_t pipelined_steps_total = 0;  // decode steps launched ahead (EngineOptions::pipeline_decode)
};

// What the server needs to know about the served model.
struct ModelInfo {
  std::string architecture;               // e.g. "qwen3"
  int vocab_size = 0;
  int max_model_len = 0;                  // effective context limit (prompt + generated)
  std::vector<int32_t> eos_token_ids;     // from generation_config.json / config.json
  SamplingParams default_sampling;        // generation_config.json defaults (temperature, top_p, top_k)
  int64_t weight_bytes = 0;
  int64_t kv_bytes_per_token = 0;
  int64_t kv_capacity_tokens = 0;         // tokens that fit in the KV pool
  int64_t kv_blocks = 0;                  // blocks of the pool
  double max_concurrency = 0;             // kv_capacity_tokens / max_model_len
};

class Engine {
 public:
  // Takes ownership of the model and starts the step thread.
  static Result<std::unique_ptr<Engine>> Create(std::unique_ptr<model::Model> model,
                                                const EngineOptions& options);
  virtual ~Engine() = default;

  // Queues a request. Errors (returned synchronously, no callback follows): empty prompt,
  // prompt + max_new_tokens beyond max_model_len (kOutOfRange), waiting queue full
  // (kResourceExhausted), unknown adapter (kNotFound), bad sampling values (kInvalidArgument);
  // an evicted adapter is reloaded here (its load errors, or kResourceExhausted when every
  // resident adapter is busy).
  virtual Result<uint64_t> Submit(GenerateRequest request, UpdateCallback callback) = 0;
  // Cancels a request if it is still known; safe to call more than once or after it finished.
  virtual void Abort(uint64_t request_id) = 0;
  virtual EngineStats Stats() const = 0;
  virtual const EngineOptions& options() const = 0;
  virtual const ModelInfo& model_info() const = 0;
  // Stops the loop; pending requests are aborted. Called by the destructor too.
  virtual void Shutdown() = 0;

  // LoRA adapters (PEFT or MLX-LM directories). Any thread; requests select one with
  // GenerateRequest::adapter = name.
  //
  // LoadAdapter reads and validates `path` against the served model (on the calling thread) and
  // registers it as `name`. Errors: kInvalidArgument (empty name, or the name is taken and not
  // `replace`), the loader's errors (kNotFound, kUnsupported naming the refused field,
  // kInvalidFormat for shape / base-model mismatches), kResourceExhausted when --max-loras adapters
  // are resident and every one is in use by a request (otherwise the least recently used idle one
  // is evicted: it stays registered and is reloaded from disk when next requested). With `replace`,
  // running requests finish with the weights they started with; new ones get the new weights.
  virtual Status LoadAdapter(const std::string& name, const std::string& path, bool replace = false) = 0;
  // Removes `name`; requests already running with it finish normally (they hold the weights),
  // later Submits naming it get kNotFound. Errors: kNotFound when no such adapter.
  virtual Status UnloadAdapter(const std::string& name) = 0;
  // Registered adapters, sorted by name.
  virtual std::vector<AdapterInfo> ListAdapters() const = 0;
};

}  // namespace petrel::runtime
