// The engine loop: each Step() schedules running sequences (decode or the next prefill chunk),
// admits waiting ones FCFS under the token budget (reusing cached prefix blocks), preempts the
// newest sequence when KV blocks run out (it is recomputed later), runs one forward pass for the
// whole mixed batch, samples, reports, and frees finished sequences' blocks at once.
#include "runtime/engine.h"

#include <algorithm>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "core/kv_quant.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "model/lora/adapter.h"
#include "model/lora/device_adapter.h"
#include "model/model.h"
#include "runtime/block_manager.h"
#include "runtime/kv_plan.h"
#include "runtime/sequence.h"

namespace petrel::runtime {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
  }
  return "?";
}

namespace {

class EngineImpl : public Engine {
 public:
  EngineImpl(std::unique_ptr<model::Model> model, EngineOptions opts, ModelInfo info,
             DType kv_dtype, int64_t n_blocks)
      : model_(std::move(model)), opts_(opts), info_(std::move(info)),
        blocks_(n_blocks, opts.block_size, opts.enable_prefix_caching) {
    cache_ = model_->CreateKvCache(n_blocks, opts.block_size, kv_dtype);
    stats_.kv_blocks_total = n_blocks;
    // Device backends sample on the device (Backend::SampleRows); the CPU keeps the host sampler.
    // PETREL_HOST_SAMPLING=1 keeps the host sampler on a device too (to measure what the device
    // sampler saves, or to rule it out when debugging).
    const char* host_sampling = std::getenv("PETREL_HOST_SAMPLING");
    device_sampling_ = model_->backend().QueryMemory().total_bytes > 0 &&
                       !(host_sampling && std::string_view(host_sampling) == "1");
    const char* pd = std::getenv("PETREL_PIPELINE_DECODE");
    const std::string_view mode = pd ? std::string_view(pd) : std::string_view(opts.pipeline_decode);
    pipeline_ = mode == "on" ? PipelineMode::kOn : mode == "off" ? PipelineMode::kOff : PipelineMode::kAuto;
    thread_ = std::jthread([this](std::stop_token st) { Loop(st); });
  }
  ~EngineImpl() override { Shutdown(); }

  Result<uint64_t> Submit(GenerateRequest req, UpdateCallback cb) override {
    if (req.prompt.empty()) return InvalidArgument("the prompt is empty");
    for (int32_t t : req.prompt)
      if (t < 0 || t >= info_.vocab_size)
        return InvalidArgument("prompt token id ", t, " is out of range [0, ", info_.vocab_size, ")");
    if (req.max_new_tokens < 1) return InvalidArgument("max_tokens must be at least 1");
    const int64_t total = (int64_t)req.prompt.size() + req.max_new_tokens;
    if (total > info_.max_model_len) {
      return OutOfRange("this model's maximum context length is ", info_.max_model_len,
                        " tokens, but ", total, " were requested (", req.prompt.size(),
                        " in the prompt, ", req.max_new_tokens, " to generate)");
    }
    PETREL_TRY(ValidateSampling(req.sampling, info_.vocab_size));
    std::shared_ptr<const model::lora::LoraAdapter> adapter;
    uint64_t salt = std::hash<std::string>{}(std::string());
    if (!req.adapter.empty()) {
      PETREL_TRY(auto acquired, AcquireAdapter(req.adapter));
      adapter = std::move(acquired.first);
      salt = acquired.second;
    }
    for (int32_t t : req.stop_token_ids)
      if (t < 0 || t >= info_.vocab_size) return InvalidArgument("stop_token_ids: id ", t, " is out of range");
    auto seq = std::make_unique<Sequence>();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return MakeError(ErrorCode::kCancelled, "the engine is shutting down");
      if (stats_.waiting + (int)incoming_.size() >= opts_.max_waiting)
        return MakeError(ErrorCode::kResourceExhausted, "too many requests waiting (", opts_.max_waiting, ")");
      seq->id = ++next_id_;
    }
    seq->tokens = req.prompt;
    seq->prompt_len = (int)req.prompt.size();
    seq->sampler.Init(req.sampling, req.prompt, info_.vocab_size, seq->id * 0x9E3779B97F4A7C15ull);
    seq->req = std::move(req);
    seq->adapter = std::move(adapter);
    seq->cache_salt = salt;
    seq->callback = std::move(cb);
    seq->arrival = std::chrono::steady_clock::now();
    const uint64_t id = seq->id;
    {
      std::lock_guard lock(mu_);
      incoming_.push_back(std::move(seq));
    }
    cv_.notify_one();
    return id;
  }

  void Abort(uint64_t id) override {
    {
      std::lock_guard lock(mu_);
      aborts_.insert(id);
    }
    cv_.notify_one();
  }

  EngineStats Stats() const override {
    std::lock_guard lock(mu_);
    EngineStats s = stats_;
    s.waiting += (int)incoming_.size();
    return s;
  }
  const EngineOptions& options() const override { return opts_; }
  const ModelInfo& model_info() const override { return info_; }

  void Shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }

  // ---- LoRA adapter registry (any thread; adapters_mu_) ----

  Status LoadAdapter(const std::string& name, const std::string& path, bool replace) override {
    if (name.empty()) return InvalidArgument("the adapter name is empty");
    {
      std::lock_guard lock(adapters_mu_);
      if (!replace && adapters_.count(name))
        return InvalidArgument("LoRA adapter \"", name, "\" is already loaded");
    }
    // Read, validate (and upload to a device backend) outside the lock: it touches the disk.
    PETREL_TRY(auto adapter, ReadAdapter(path));
    std::lock_guard lock(adapters_mu_);
    if (!replace && adapters_.count(name))
      return InvalidArgument("LoRA adapter \"", name, "\" is already loaded");
    PETREL_TRY(MakeRoom(name));
    AdapterEntry& e = adapters_[name];
    e.path = path;
    Install(e, std::move(adapter));
    LogInfo("LoRA adapter \"", name, "\" loaded from ", path, " (", model::lora::AdapterFormatName(e.adapter->format),
            ", ", e.adapter->NumLinears(), " linears, max rank ", e.adapter->MaxRank(), ", ",
            e.adapter->NumBytes() / 1e6, " MB)");
    return OkStatus();
  }

  Status UnloadAdapter(const std::string& name) override {
    std::lock_guard lock(adapters_mu_);
    auto it = adapters_.find(name);
    if (it == adapters_.end()) return NotFound("LoRA adapter \"", name, "\" is not loaded");
    adapters_.erase(it);  // running requests keep their shared_ptr until they finish
    LogInfo("LoRA adapter \"", name, "\" unloaded");
    return OkStatus();
  }

  std::vector<AdapterInfo> ListAdapters() const override {
    std::lock_guard lock(adapters_mu_);
    std::vector<AdapterInfo> out;
    for (const auto& [name, e] : adapters_) {
      AdapterInfo i;
      i.name = name;
      i.path = e.path;
      i.format = e.format;
      i.max_rank = e.max_rank;
      i.resident = e.adapter != nullptr;
      i.bytes = e.adapter ? e.adapter->NumBytes() : 0;
      i.in_flight = e.adapter ? (int)e.adapter.use_count() - 1 : 0;
      i.generation = e.generation;
      out.push_back(std::move(i));
    }
    return out;
  }

 private:
  struct AdapterEntry {
    std::string path;
    std::shared_ptr<const model::lora::LoraAdapter> adapter;  // null while evicted
    std::string format;
    int64_t max_rank = 0;
    uint64_t generation = 0;
    uint64_t last_used = 0;
  };

  // adapters_mu_ held. Stores a freshly loaded adapter under a new generation id.
  void Install(AdapterEntry& e, std::shared_ptr<const model::lora::LoraAdapter> a) {
    e.adapter = std::move(a);
    e.format = model::lora::AdapterFormatName(e.adapter->format);
    e.max_rank = e.adapter->MaxRank();
    e.generation = ++adapter_generation_;
    e.last_used = ++adapter_tick_;
  }

  // adapters_mu_ held. Makes room for one more resident adapter (besides `name`'s current load,
  // which is being replaced) by evicting the least recently used idle one. An adapter is idle when
  // only the registry holds it: requests take their reference under this same lock, so a use
  // count of 1 cannot grow behind our back.
  Status MakeRoom(const std::string& name) {
    auto resident = [&] {
      int n = 0;
      for (const auto& [k, e] : adapters_) n += (e.adapter != nullptr && k != name);
      return n;
    };
    while (resident() >= std::max(opts_.max_loras, 1)) {
      AdapterEntry* victim = nullptr;
      std::string victim_name;
      for (auto& [k, e] : adapters_) {
        if (k == name || !e.adapter || e.adapter.use_count() > 1) continue;
        if (!victim || e.last_used < victim->last_used) {
          victim = &e;
          victim_name = k;
        }
      }
      if (!victim)
        return MakeError(ErrorCode::kResourceExhausted, "all ", opts_.max_loras,
                         " resident LoRA adapters are in use by requests (--max-loras ",
                         opts_.max_loras, "); retry when one is idle");
      LogInfo("LoRA adapter \"", victim_name, "\" evicted (--max-loras ", opts_.max_loras, ")");
      victim->adapter.reset();
    }
    return OkStatus();
  }

  // Submit's lookup: the adapter's current load (reloading an evicted one) and its cache salt.
  Result<std::pair<std::shared_ptr<const model::lora::LoraAdapter>, uint64_t>> AcquireAdapter(
      const std::string& name) {
    std::string path;
    {
      std::lock_guard lock(adapters_mu_);
      auto it = adapters_.find(name);
      if (it == adapters_.end()) return NotFound("LoRA adapter \"", name, "\" is not loaded");
      AdapterEntry& e = it->second;
      if (e.adapter) {
        e.last_used = ++adapter_tick_;
        return std::make_pair(e.adapter, Salt(name, e.generation));
      }
      path = e.path;
    }
    // Evicted: reload from disk, outside the lock.
    PETREL_TRY(auto adapter, ReadAdapter(path));
    std::lock_guard lock(adapters_mu_);
    auto it = adapters_.find(name);
    if (it == adapters_.end()) return NotFound("LoRA adapter \"", name, "\" is not loaded");
    AdapterEntry& e = it->second;
    if (!e.adapter) {  // nobody reloaded it meanwhile
      PETREL_TRY(MakeRoom(name));
      Install(e, std::move(adapter));
    }
    e.last_used = ++adapter_tick_;
    return std::make_pair(e.adapter, Salt(name, e.generation));
  }

  // lora::LoadAdapter, then a copy in the backend's memory when that is a device's (freed when
  // the last holder lets go: the registry on unload / eviction, or the last request using it).
  Result<std::shared_ptr<const model::lora::LoraAdapter>> ReadAdapter(const std::string& path) {
    PETREL_TRY(auto adapter, model::lora::LoadAdapter(path, model_->config()));
    return model::lora::UploadAdapter(std::move(adapter), model_->backend());
  }

  static uint64_t Salt(const std::string& name, uint64_t generation) {
    return std::hash<std::string>{}(name) ^ (generation * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
  }

  void Loop(std::stop_token st) {
    while (true) {
      std::unordered_set<uint64_t> aborts;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] {
          return stopping_ || !incoming_.empty() || !aborts_.empty() || !running_.empty() ||
                 !waiting_.empty();
        });
        if (stopping_) break;
        while (!incoming_.empty()) {
          waiting_.push_back(std::move(incoming_.front()));
          incoming_.pop_front();
        }
        aborts.swap(aborts_);
      }
      if (!aborts.empty()) ApplyAborts(aborts);
      if (!running_.empty() || !waiting_.empty()) Step();
      PublishStats();
    }
    // Shutdown: every request still known gets a final abort update.
    std::unique_lock lock(mu_);
    while (!incoming_.empty()) {
      waiting_.push_back(std::move(incoming_.front()));
      incoming_.pop_front();
    }
    lock.unlock();
    for (auto& s : running_) Finish(*s, FinishReason::kAbort, {});
    for (auto& s : waiting_) Finish(*s, FinishReason::kAbort, {});
    running_.clear();
    waiting_.clear();
  }

  void ApplyAborts(const std::unordered_set<uint64_t>& ids) {
    auto drop = [&](auto& list) {
      for (auto it = list.begin(); it != list.end();) {
        if (ids.count((*it)->id)) {
          Finish(**it, FinishReason::kAbort, {});
          it = list.erase(it);
        } else {
          ++it;
        }
      }
    };
    drop(running_);
    drop(waiting_);
  }

  // Frees the sequence's blocks and sends its final update (no new tokens).
  void Finish(Sequence& s, FinishReason reason, std::vector<TokenOutput> last,
              std::string error = {}) {
    FreeBlocks(s);
    // Let go of the adapter before the final update: whoever waits for it may unload / evict next.
    s.adapter.reset();
    RequestUpdate u;
    u.request_id = s.id;
    u.tokens = std::move(last);
    u.finished = true;
    u.reason = reason;
    u.error = std::move(error);
    u.prompt_tokens = s.prompt_len;
    u.cached_prompt_tokens = s.cached_prompt_tokens;
    u.generated_tokens = s.generated;
    finished_++;
    if (s.callback) s.callback(std::move(u));
  }

  void FreeBlocks(Sequence& s) {
    for (int32_t b : s.blocks) blocks_.Release(b);
    s.blocks.clear();
    s.block_hashes.clear();
    s.num_computed = 0;
  }

  // Makes sure `s` has blocks for `n_tokens` cached tokens. False when the pool is short.
  bool Reserve(Sequence& s, int n_tokens) {
    const int bs = opts_.block_size;
    const int need = (n_tokens + bs - 1) / bs - (int)s.blocks.size();
    if (need <= 0) return true;
    if (blocks_.available() < need) return false;
    for (int i = 0; i < need; ++i) s.blocks.push_back(blocks_.Allocate());
    return true;
  }

  // Recompute-mode preemption: drop the KV, go back to the front of the queue.
  void Preempt(std::unique_ptr<Sequence> s) {
    FreeBlocks(*s);
    preemptions_++;
    waiting_.push_front(std::move(s));
  }

  // Prefix-cache lookup for a sequence without blocks: full blocks of all but its last token.
  void MatchPrefix(Sequence& s) {
    const int bs = opts_.block_size;
    const int full = ((int)s.tokens.size() - 1) / bs;
    std::vector<uint64_t> hashes;
    uint64_t h = 0;
    const uint64_t salt = s.cache_salt;
    for (int b = 0; b < full; ++b) {
      h = BlockManager::HashBlock(h, std::span(s.tokens).subspan(b * bs, bs), salt);
      hashes.push_back(h);
    }
    const int hit = blocks_.MatchPrefix(hashes, s.blocks);
    s.block_hashes.assign(hashes.begin(), hashes.begin() + hit);
    s.num_computed = hit * bs;
    if (s.first_admission) s.cached_prompt_tokens = std::min(s.num_computed, s.prompt_len);
    s.first_admission = false;
  }

  // Publishes the sequence's newly completed blocks to the prefix cache.
  void PublishFullBlocks(Sequence& s) {
    const int bs = opts_.block_size;
    const uint64_t salt = s.cache_salt;
    while ((int)s.block_hashes.size() < s.num_computed / bs) {
      const int b = (int)s.block_hashes.size();
      const uint64_t parent = b ? s.block_hashes.back() : 0;
      const uint64_t h = BlockManager::HashBlock(parent, std::span(s.tokens).subspan(b * bs, bs), salt);
      s.block_hashes.push_back(h);
      blocks_.Publish(s.blocks[b], h);
    }
  }

  struct Scheduled {
    Sequence* seq;
    int n;  // tokens computed this step
  };

  void Step() {
    if (CanPipeline()) return RunPipelined();
    StepScheduled();
  }

  void StepScheduled() {
    int budget = opts_.max_num_batched_tokens;
    std::vector<Scheduled> sched;
    // 1. Running sequences, oldest first: one decode token, or the next prefill chunk.
    for (size_t i = 0; i < running_.size() && budget > 0;) {
      Sequence& s = *running_[i];
      const int n = std::min(s.remaining_to_compute(), budget);
      if (Reserve(s, s.num_computed + n)) {
        sched.push_back({&s, n});
        budget -= n;
        ++i;
        continue;
      }
      // Out of blocks: preempt the newest running sequence (possibly this one).
      auto victim = std::move(running_.back());
      running_.pop_back();
      const bool self = victim.get() == &s;
      Preempt(std::move(victim));
      if (self) break;
    }
    // 2. Admit waiting sequences in arrival order while budget, slots and blocks allow.
    while (!waiting_.empty() && budget > 0 && (int)running_.size() < opts_.max_num_seqs) {
      Sequence& s = *waiting_.front();
      if (s.blocks.empty()) MatchPrefix(s);
      const int n = std::min(s.remaining_to_compute(), budget);
      if (!Reserve(s, s.num_computed + n)) {
        if (running_.empty() && sched.empty()) {
          // Cannot fit even alone: the pool is smaller than this sequence needs.
          auto seq = std::move(waiting_.front());
          waiting_.pop_front();
          Finish(*seq, FinishReason::kError, {},
                 "the KV cache (" + std::to_string(blocks_.total()) +
                     " blocks) cannot hold this request; raise --kv-cache-memory");
          continue;
        }
        FreeBlocks(s);  // give back prefix hits; retry next step
        break;
      }
      sched.push_back({&s, n});
      budget -= n;
      running_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    if (sched.empty()) return;
    RunBatch(std::move(sched));
  }

  void RunBatch(std::vector<Scheduled> sched) {
    const int bs = opts_.block_size;
    model::ForwardBatch batch;
    // With LoRA: sequences that share an adapter become neighbours, so each adapter's rows form
    // one run (two small matmuls per adapter and projection). Without, nothing changes.
    const bool any_adapter = std::any_of(sched.begin(), sched.end(),
                                         [](const Scheduled& x) { return x.seq->adapter != nullptr; });
    if (any_adapter) {
      std::stable_sort(sched.begin(), sched.end(), [](const Scheduled& x, const Scheduled& y) {
        return std::less<const void*>()(x.seq->adapter.get(), y.seq->adapter.get());
      });
    }
    std::vector<int> logit_index(sched.size(), -1);
    for (size_t i = 0; i < sched.size(); ++i) {
      Sequence& s = *sched[i].seq;
      const int begin = (int)batch.tokens.size();
      for (int j = 0; j < sched[i].n; ++j) {
        const int pos = s.num_computed + j;
        batch.tokens.push_back(s.tokens[pos]);
        batch.positions.push_back(pos);
        batch.slots.push_back((int64_t)s.blocks[pos / bs] * bs + pos % bs);
      }
      batch.seqs.push_back(kernels::AttentionSeq{begin, sched[i].n, s.num_computed + sched[i].n, s.blocks});
      if (any_adapter) batch.seq_adapters.push_back(s.adapter.get());
      if (s.num_computed + sched[i].n == (int)s.tokens.size()) {
        logit_index[i] = (int)batch.logit_rows.size();
        batch.logit_rows.push_back((int32_t)batch.tokens.size() - 1);
      }
    }
    const int64_t vocab = info_.vocab_size;
    // Sequences to sample on the host, with their row in logits_.
    std::vector<std::pair<size_t, int>> on_host;
    std::vector<TokenOutput> sampled(sched.size());
    model_->ForwardLogits(batch, *cache_, [&](kernels::Backend& be, TensorView lg) {
      if (device_sampling_ && SampleOnDevice(be, lg, sched, logit_index, sampled, on_host)) return;
      // Host path (the CPU, or a backend without SampleRows): all logits to the host.
      on_host.clear();
      for (size_t i = 0; i < sched.size(); ++i)
        if (logit_index[i] >= 0) on_host.emplace_back(i, logit_index[i]);
      logits_.resize((size_t)lg.NumElements());
      be.ToHost(lg, logits_.data());
    });

    // Host sampling in parallel: each sequence has its own RNG and history, so the result does
    // not depend on the thread that samples it.
    sample_pool_.ParallelFor((int64_t)on_host.size(), 1, [&](int64_t b, int64_t e, int) {
      for (int64_t j = b; j < e; ++j) {
        const auto [i, row] = on_host[j];
        Sequence& s = *sched[i].seq;
        Sample(std::span(logits_.data() + (size_t)row * vocab, vocab), s.req.sampling, s.sampler,
               s.req.top_logprobs, sampled[i]);
      }
    });

    std::vector<Sequence*> done;
    std::vector<FinishReason> reasons;
    for (size_t i = 0; i < sched.size(); ++i) {
      Sequence& s = *sched[i].seq;
      const bool was_prefill = s.num_computed < s.prompt_len;
      s.num_computed += sched[i].n;
      if (was_prefill) prompt_tokens_ += std::min(s.num_computed, s.prompt_len) -
                                         std::max(s.num_computed - sched[i].n, 0);
      PublishFullBlocks(s);
      if (logit_index[i] < 0) continue;  // mid-prefill chunk
      TakeToken(s, std::move(sampled[i]), done, reasons);
    }
    FinishDone(done, reasons);
  }

  // Appends the token a step chose for `s` and sends it as an update, or, when it ends the
  // request (EOS, a stop token, max tokens, the model's length), lists `s` in `done` with its
  // reason and keeps the token for the final update (FinishDone). True when it ends.
  bool TakeToken(Sequence& s, TokenOutput out, std::vector<Sequence*>& done,
                 std::vector<FinishReason>& reasons) {
    s.tokens.push_back(out.token);
    s.generated++;
    generation_tokens_++;
    FinishReason reason = FinishReason::kNone;
    const auto& eos = s.req.eos_token_ids;
    const auto& stops = s.req.stop_token_ids;
    if ((!s.req.ignore_eos && std::find(eos.begin(), eos.end(), out.token) != eos.end()) ||
        std::find(stops.begin(), stops.end(), out.token) != stops.end()) {
      reason = FinishReason::kStop;
    } else if (s.generated >= s.req.max_new_tokens || (int)s.tokens.size() >= info_.max_model_len) {
      reason = FinishReason::kLength;
    }
    if (reason != FinishReason::kNone) {
      std::vector<TokenOutput> last{std::move(out)};
      done.push_back(&s);
      reasons.push_back(reason);
      pending_last_.push_back(std::move(last));
      return true;
    }
    RequestUpdate u;
    u.request_id = s.id;
    u.tokens.push_back(std::move(out));
    u.prompt_tokens = s.prompt_len;
    u.cached_prompt_tokens = s.cached_prompt_tokens;
    u.generated_tokens = s.generated;
    if (s.callback) s.callback(std::move(u));
    return false;
  }

  // Finishes the sequences TakeToken listed and removes them from running_.
  void FinishDone(const std::vector<Sequence*>& done, const std::vector<FinishReason>& reasons) {
    for (size_t i = 0; i < done.size(); ++i) {
      Finish(*done[i], reasons[i], std::move(pending_last_[i]));
      auto it = std::find_if(running_.begin(), running_.end(),
                             [&](const auto& p) { return p.get() == done[i]; });
      running_.erase(it);
    }
    pending_last_.clear();
  }

  // Pipelined decoding (Model::LaunchArgMax / LaunchSample; vLLM calls it async scheduling):
  // while every running sequence decodes one token a step without penalties, logit bias or an
  // adapter, greedily or by the device sampler, and nothing waits to be admitted or aborted, step
  // n + 1 is launched - its tokens fed on the device from step n's ids - before step n's ids are
  // taken, so that the host's work for a step (building it, the graph launch, the updates)
  // overlaps the device's. A sequence that ends at step n (EOS, stop token) has had step n + 1
  // computed for nothing: its row is dropped and its KV write lands in its own, unpublished block
  // before the block is released. PipelineMode::kAuto uses it where the backend feeds the tokens
  // on the device (CUDA); sampled rows need the backend's SampleRowsAsync.
  bool CanPipeline() const {
    if (pipeline_ == PipelineMode::kOff || !waiting_.empty() || running_.empty()) return false;
    kernels::Backend& be = model_->backend();
    if (pipeline_ == PipelineMode::kAuto && !(device_sampling_ && be.FeedsStepTokens()))
      return false;
    for (const auto& s : running_) {
      const SamplingParams& p = s->req.sampling;
      if (s->remaining_to_compute() != 1 || NeedsHostSampling(p, s->req.top_logprobs) || s->adapter)
        return false;
      if (!Greedy(*s) && !(device_sampling_ && be.SamplesAsync())) return false;
    }
    return true;
  }

  // Greedy without logprobs: the argmax alone (Backend::ArgMax) serves it.
  static bool Greedy(const Sequence& s) {
    return s.req.sampling.temperature == 0.0f && s.req.top_logprobs < 0;
  }

  // Nothing for the scheduler: no new request, abort or shutdown pending.
  bool Quiet() {
    std::lock_guard lock(mu_);
    return incoming_.empty() && aborts_.empty() && !stopping_;
  }

  void RunPipelined() {
    const int bs = opts_.block_size;
    std::vector<Sequence*> seqs;
    for (auto& s : running_) seqs.push_back(s.get());
    const size_t n = seqs.size();
    const bool sampled = !std::all_of(seqs.begin(), seqs.end(), [](Sequence* s) { return Greedy(*s); });
    // The step `ahead` steps past the computed tokens: ahead 1 is launched before the ids of
    // ahead 0 are known (its tokens are fed). nullopt when the KV pool is out of blocks.
    auto build = [&](int ahead) -> std::optional<model::ForwardBatch> {
      model::ForwardBatch b;
      for (size_t i = 0; i < n; ++i) {
        Sequence& s = *seqs[i];
        const int pos = s.num_computed + ahead;
        if (!Reserve(s, pos + 1)) return std::nullopt;
        b.tokens.push_back(ahead ? 0 : s.tokens[pos]);  // ahead: replaced by the fed ids
        b.positions.push_back(pos);
        b.slots.push_back((int64_t)s.blocks[pos / bs] * bs + pos % bs);
        b.seqs.push_back(kernels::AttentionSeq{(int32_t)i, 1, pos + 1, s.blocks});
        b.logit_rows.push_back((int32_t)i);
      }
      return b;
    };
    // Launches a built step (the device sampler's draw for a row is keyed by its seed and the
    // number of tokens generated before it, as in RunBatch).
    auto launch = [&](const model::ForwardBatch& b, int ahead) {
      if (!sampled) return model_->LaunchArgMax(b, *cache_, ahead > 0);
      std::vector<kernels::SampleSpec> specs(n);
      for (size_t i = 0; i < n; ++i) {
        const Sequence& s = *seqs[i];
        const SamplingParams& p = s.req.sampling;
        specs[i] = kernels::SampleSpec{.temperature = p.temperature,
                                       .top_k = p.top_k,
                                       .top_p = p.top_p,
                                       .min_p = p.min_p,
                                       .seed = s.sampler.device_seed,
                                       .step = (uint64_t)(s.generated + ahead),
                                       .top_logprobs = s.req.top_logprobs};
      }
      model_->LaunchSample(b, *cache_, specs, ahead > 0);
    };
    // The oldest launched step's token for each row.
    std::vector<int32_t> ids(n);
    std::vector<kernels::SampleResult> res(n);
    auto collect = [&](std::vector<TokenOutput>& outs) {
      outs.assign(n, TokenOutput{});
      if (!sampled) {
        model_->CollectArgMax(ids.data());
        for (size_t i = 0; i < n; ++i) outs[i].token = ids[i];
        return;
      }
      model_->CollectSample(res);
      for (size_t i = 0; i < n; ++i) {
        outs[i].token = res[i].token;
        outs[i].logprob = res[i].logprob;
        for (const auto& [id, lp] : res[i].top) outs[i].top.push_back(TopLogprob{id, lp});
      }
    };
    std::optional<model::ForwardBatch> cur = build(0);
    if (!cur) return StepScheduled();  // short of blocks: the scheduler preempts
    launch(*cur, 0);
    std::vector<bool> alive(n, true);
    std::vector<TokenOutput> outs;
    while (true) {
      // Launch the next step unless this one may be the last of a sequence by length (then its
      // next position may not exist) or the scheduler has work.
      bool next = Quiet();
      for (size_t i = 0; next && i < n; ++i)
        next = seqs[i]->generated + 1 < seqs[i]->req.max_new_tokens &&
               (int)seqs[i]->tokens.size() + 1 < info_.max_model_len;
      std::optional<model::ForwardBatch> nb;
      if (next) nb = build(1);
      if (nb) launch(*nb, 1), ++pipelined_steps_;
      // This step's tokens; when a sequence ended, the launched step's too (then return).
      bool any_done = false;
      for (int round = 0; round < (nb ? 2 : 1); ++round) {
        if (round == 1 && !any_done) break;  // the launched step becomes the current one
        collect(outs);
        std::vector<Sequence*> done;
        std::vector<FinishReason> reasons;
        for (size_t i = 0; i < n; ++i) {
          if (!alive[i]) continue;
          Sequence& s = *seqs[i];
          s.num_computed += 1;
          PublishFullBlocks(s);
          if (TakeToken(s, std::move(outs[i]), done, reasons)) alive[i] = false, any_done = true;
        }
        FinishDone(done, reasons);
        PublishStats();
      }
      if (!nb || any_done) return;
    }
  }

  // Samples the rows of `lg` [R, vocab] (backend memory) on the device: all-greedy batches without
  // logprobs through Backend::ArgMax, others through Backend::SampleRows. Requests the device op
  // does not cover (NeedsHostSampling) are skipped there; their rows are gathered and copied into
  // logits_ and listed in `on_host`. False (nothing done) when the backend has no SampleRows.
  bool SampleOnDevice(kernels::Backend& be, TensorView lg, const std::vector<Scheduled>& sched,
                      const std::vector<int>& logit_index, std::vector<TokenOutput>& sampled,
                      std::vector<std::pair<size_t, int>>& on_host) {
    const int64_t vocab = info_.vocab_size;
    const int64_t R = lg.NumElements() / vocab;
    std::vector<kernels::SampleSpec> specs(R);
    std::vector<int32_t> host_rows;
    bool all_greedy = true;
    for (size_t i = 0; i < sched.size(); ++i) {
      const int r = logit_index[i];
      if (r < 0) continue;
      const Sequence& s = *sched[i].seq;
      const SamplingParams& p = s.req.sampling;
      if (NeedsHostSampling(p, s.req.top_logprobs)) {
        specs[r].skip = true;
        on_host.emplace_back(i, (int)host_rows.size());
        host_rows.push_back(r);
        continue;
      }
      specs[r] = kernels::SampleSpec{.temperature = p.temperature,
                                     .top_k = p.top_k,
                                     .top_p = p.top_p,
                                     .min_p = p.min_p,
                                     .seed = s.sampler.device_seed,
                                     .step = (uint64_t)s.generated,
                                     .top_logprobs = s.req.top_logprobs};
      all_greedy = all_greedy && p.temperature == 0.0f && s.req.top_logprobs < 0;
    }
    if (host_rows.empty() && all_greedy) {
      std::vector<int32_t> ids(R);
      be.ArgMax(lg, ids.data());
      for (size_t i = 0; i < sched.size(); ++i)
        if (logit_index[i] >= 0) sampled[i].token = ids[logit_index[i]];
      return true;
    }
    if ((int64_t)host_rows.size() < R) {
      std::vector<kernels::SampleResult> res(R);
      if (!be.SampleRows(lg, specs, res)) {
        on_host.clear();
        device_sampling_ = false;  // this backend has no device sampler: host from now on
        return false;
      }
      for (size_t i = 0; i < sched.size(); ++i) {
        const int r = logit_index[i];
        if (r < 0 || specs[r].skip) continue;
        TokenOutput& o = sampled[i];
        o.token = res[r].token;
        o.logprob = res[r].logprob;
        for (const auto& [id, lp] : res[r].top) o.top.push_back(TopLogprob{id, lp});
      }
    }
    if ((int64_t)host_rows.size() == R) {  // all on the host: the rows as they are
      for (auto& [i, row] : on_host) row = logit_index[i];
      logits_.resize((size_t)lg.NumElements());
      be.ToHost(lg, logits_.data());
    } else if (!host_rows.empty()) {  // some: only their rows cross
      Tensor sel = be.Allocate(DType::kF32, {(int64_t)host_rows.size(), vocab});
      be.GatherRows(sel, lg, host_rows);
      logits_.resize(host_rows.size() * vocab);
      be.ToHost(sel, logits_.data());
    }
    return true;
  }

  void PublishStats() {
    std::lock_guard lock(mu_);
    stats_.running = (int)running_.size();
    stats_.waiting = (int)waiting_.size();
    stats_.kv_blocks_used = blocks_.used();
    stats_.prefix_cache_queries = blocks_.queries();
    stats_.prefix_cache_hits = blocks_.hits();
    stats_.prompt_tokens_total = prompt_tokens_;
    stats_.generation_tokens_total = generation_tokens_;
    stats_.preemptions_total = preemptions_;
    stats_.requests_finished_total = finished_;
    stats_.pipelined_steps_total = pipelined_steps_;
  }

  std::unique_ptr<model::Model> model_;
  EngineOptions opts_;
  ModelInfo info_;
  BlockManager blocks_;
  std::unique_ptr<kernels::KvCache> cache_;

  mutable std::mutex mu_;
  std::condition_variable cv_;

  mutable std::mutex adapters_mu_;  // the LoRA registry; never held together with mu_
  std::map<std::string, AdapterEntry> adapters_;
  uint64_t adapter_generation_ = 0, adapter_tick_ = 0;
  std::deque<std::unique_ptr<Sequence>> incoming_;
  std::unordered_set<uint64_t> aborts_;
  uint64_t next_id_ = 0;
  bool stopping_ = false;
  EngineStats stats_;

  // Engine thread only.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<float> logits_;  // host copies of the logits rows sampled on the host
  bool device_sampling_ = false;
  enum class PipelineMode { kAuto, kOn, kOff };
  PipelineMode pipeline_ = PipelineMode::kAuto;
  std::vector<std::vector<TokenOutput>> pending_last_;
  int64_t prompt_tokens_ = 0, generation_tokens_ = 0, preemptions_ = 0, finished_ = 0;
  int64_t pipelined_steps_ = 0;
  // Samples the batch's sequences in parallel (engine thread only); sized like the backend.
  ThreadPool sample_pool_{opts_.n_threads > 0 ? opts_.n_threads : ThreadPool::HardwareThreads()};
  std::jthread thread_;  // last: started after everything above exists
};

// vLLM's profile run: one forward pass of max_num_batched_tokens tokens spread over
// min(max_num_seqs, tokens) sequences, each with a logits row, then device sampling with top
// logprobs, so that the backend's activation buffers, GEMM scratch and sampling buffers reach their
// largest before free memory is measured. Its KV cache is a single block that every token writes
// and every sequence's table points at: the values are garbage, only the sizes matter.
void ProfileRun(model::Model& m, const EngineOptions& o, DType kv_dtype) {
  const int T = o.max_num_batched_tokens;
  const int n_seqs = std::max(1, std::min(o.max_num_seqs, T));
  auto cache = m.CreateKvCache(1, o.block_size, kv_dtype);
  const int longest = T - (n_seqs - 1);  // one long prompt (attention scratch), the rest decodes
  const std::vector<int32_t> table((longest + o.block_size - 1) / o.block_size, 0);
  model::ForwardBatch b;
  for (int s = 0; s < n_seqs; ++s) {
    const int len = s == 0 ? longest : 1;
    const int begin = (int)b.tokens.size();
    for (int j = 0; j < len; ++j) {
      b.tokens.push_back(0);
      b.positions.push_back(j);
      b.slots.push_back(j % o.block_size);
    }
    b.seqs.push_back(kernels::AttentionSeq{begin, len, len, std::span(table).first((len + o.block_size - 1) / o.block_size)});
    b.logit_rows.push_back((int32_t)b.tokens.size() - 1);
  }
  m.ForwardLogits(b, *cache, [&](kernels::Backend& be, TensorView lg) {
    std::vector<kernels::SampleSpec> specs(b.logit_rows.size(),
                                           kernels::SampleSpec{.temperature = 1.0f,
                                                               .top_k = 50,
                                                               .top_p = 0.9f,
                                                               .top_logprobs = 20});
    std::vector<kernels::SampleResult> res(specs.size());
    if (!be.SampleRows(lg, specs, res)) {
      std::vector<int32_t> ids(specs.size());
      be.ArgMax(lg, ids.data());
    }
  });
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<model::Model> model,
                                               const EngineOptions& options) {
  EngineOptions o = options;
  const auto& c = model->config();
  ModelInfo info;
  info.architecture = c.architecture;
  info.vocab_size = (int)c.vocab_size;
  info.max_model_len = o.max_model_len > 0 ? o.max_model_len : (int)c.max_position_embeddings;
  if (o.pipeline_decode != "auto" && o.pipeline_decode != "on" && o.pipeline_decode != "off")
    return InvalidArgument("pipeline_decode must be auto, on or off, not '", o.pipeline_decode, "'");
  if (info.max_model_len > c.max_position_embeddings)
    return InvalidArgument("--max-model-len ", info.max_model_len, " exceeds the model's max_position_embeddings ",
                           c.max_position_embeddings);
  const auto& g = model->generation_config();
  for (int64_t e : (g.eos_token_ids.empty() ? c.eos_token_ids : g.eos_token_ids))
    info.eos_token_ids.push_back((int32_t)e);
  if (g.present) {
    info.default_sampling.temperature = g.do_sample ? (float)g.temperature : 0.0f;
    info.default_sampling.top_p = (float)g.top_p;
    info.default_sampling.top_k = (int)g.top_k;
    info.default_sampling.min_p = (float)g.min_p;
    info.default_sampling.repetition_penalty = (float)g.repetition_penalty;
  }
  kernels::Backend& be = model->backend();
  const bool device = be.QueryMemory().total_bytes > 0;
  DType kv_dtype = device ? DType::kBF16 : DType::kF32;  // "auto"
  if (o.kv_cache_dtype != "auto") {
    auto dt = ParseKvCacheDType(o.kv_cache_dtype);
    if (!dt.ok()) return InvalidArgument("--kv-cache-dtype: ", dt.error().message, " (or auto)");
    kv_dtype = *dt;
  }
  if (kv_dtype == DType::kI8 && device)
    return Unsupported("--kv-cache-dtype int8 is implemented on the CPU backend only, not on ", be.name());
  if (o.block_size < 1 || o.block_size > 1024) return InvalidArgument("block size must be in [1, 1024]");
  if (o.max_num_seqs < 1) return InvalidArgument("--max-num-seqs must be >= 1");
  if (o.max_num_batched_tokens < 1) return InvalidArgument("--max-num-batched-tokens must be >= 1");
  if (o.max_loras < 1) return InvalidArgument("--max-loras must be >= 1");
  info.weight_bytes = model->WeightBytes();
  info.kv_bytes_per_token = c.KvBytesPerToken(kv_dtype);
  // On a device, measure what the largest step needs before sizing the pool from what is left.
  if (device) ProfileRun(*model, o, kv_dtype);
  const kernels::MemoryInfo mem = be.QueryMemory();
  const KvPlanInput plan_in{.bytes_per_block = info.kv_bytes_per_token * o.block_size,
                            .block_size = o.block_size,
                            .max_model_len = info.max_model_len,
                            .max_num_seqs = o.max_num_seqs,
                            .kv_cache_bytes = o.kv_cache_bytes,
                            .gpu_memory_utilization = o.gpu_memory_utilization,
                            .device_free_bytes = mem.free_bytes,
                            .device_total_bytes = mem.total_bytes};
  PETREL_TRY(const KvPlan plan, PlanKvCache(plan_in));
  const int64_t n_blocks = plan.n_blocks;
  info.kv_capacity_tokens = plan.capacity_tokens;
  info.kv_blocks = plan.n_blocks;
  info.max_concurrency = plan.max_concurrency;
  LogInfo("model ", model->dir(), ": ", c.architecture, " on ", be.name(), ", weights ",
          info.weight_bytes / 1e6, " MB; KV cache ", DTypeName(kv_dtype), " ",
          info.kv_bytes_per_token, " bytes/token: ", DescribeKvPlan(plan, plan_in));
  return std::unique_ptr<Engine>(new EngineImpl(std::move(model), o, std::move(info), kv_dtype, n_blocks));
}

}  // namespace petrel::runtime
