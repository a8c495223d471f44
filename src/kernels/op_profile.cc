#include "kernels/op_profile.h"

#include <algorithm>
#include <chrono>
#include <map>

namespace petrel::kernels {

namespace {

using Clock = std::chrono::steady_clock;

std::string ShapeName(const char* op, TensorView w) {
  std::string s = op;
  s += ' ';
  s += std::to_string(w.dim(1)) + "x" + std::to_string(w.dim(0)) + ' ' + DTypeName(w.dtype);
  return s;
}

class ProfilingBackend final : public Backend, public OpProfile {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)) { Reset(); }

  // Runs f, adding its wall time to op's total.
  template <typename F>
  auto Time(const std::string& op, F&& f) {
    struct Stop {
      ProfilingBackend* self;
      const std::string& op;
      Clock::time_point t0 = Clock::now();
      ~Stop() {
        OpTime& t = self->times_[op];
        t.op = op;
        t.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
        ++t.calls;
      }
    } stop{this, op};
    return f();
  }

  std::vector<OpTime> Snapshot() const override {
    std::vector<OpTime> v;
    double inside = 0;
    for (const auto& [name, t] : times_) {
      v.push_back(t);
      inside += t.seconds;
    }
    const double wall = std::chrono::duration<double>(Clock::now() - since_).count();
    v.push_back({"(between ops)", std::max(0.0, wall - inside), 0});
    std::sort(v.begin(), v.end(), [](const OpTime& a, const OpTime& b) { return a.seconds > b.seconds; });
    return v;
  }
  void Reset() override {
    times_.clear();
    since_ = Clock::now();
  }

  const char* name() const override { return in_->name(); }
  Tensor Allocate(DType dtype, Shape shape) override { return Time("Allocate", [&] { return in_->Allocate(dtype, shape); }); }
  std::unique_ptr<KvCache> AllocateKvCache(const KvCacheLayout& layout) override {
    return in_->AllocateKvCache(layout);
  }
  TensorView UploadWeight(TensorView host) override { return in_->UploadWeight(host); }
  void BeginBatch(const BatchMetadata& meta) override { Time("BeginBatch", [&] { in_->BeginBatch(meta); }); }
  void Embedding(TensorView out, TensorView table, std::span<const int32_t> ids) override {
    Time("Embedding", [&] { in_->Embedding(out, table, ids); });
  }
  void RmsNorm(TensorView out, TensorView x, TensorView w, float eps) override {
    Time("RmsNorm", [&] { in_->RmsNorm(out, x, w, eps); });
  }
  void MatMul(TensorView out, TensorView x, TensorView w, TensorView bias) override {
    Time(ShapeName("MatMul", w), [&] { in_->MatMul(out, x, w, bias); });
  }
  void MatMuls(TensorView x, std::span<const MatMulJob> jobs) override {
    std::string n = "MatMuls";
    for (const MatMulJob& j : jobs) n += (n.size() > 7 ? "+" : " ") + std::to_string(j.w.dim(0));
    if (!jobs.empty()) n += " K" + std::to_string(jobs[0].w.dim(1)) + ' ' + DTypeName(jobs[0].w.dtype);
    Time(n, [&] { in_->MatMuls(x, jobs); });
  }
  void MatMulAdd(TensorView out, TensorView x, TensorView w) override {
    Time(ShapeName("MatMulAdd", w), [&] { in_->MatMulAdd(out, x, w); });
  }
  void Rope(TensorView x, int n_heads, int head_dim, std::span<const int32_t> positions,
            const RopeTable& rope) override {
    Time("Rope", [&] { in_->Rope(x, n_heads, head_dim, positions, rope); });
  }
  void Add(TensorView x, TensorView y) override { Time("Add", [&] { in_->Add(x, y); }); }
  void SiluMul(TensorView out, TensorView gate, TensorView up) override {
    Time("SiluMul", [&] { in_->SiluMul(out, gate, up); });
  }
  void StoreKv(KvCache& cache, int layer, TensorView k, TensorView v, std::span<const int64_t> slots) override {
    Time("StoreKv", [&] { in_->StoreKv(cache, layer, k, v, slots); });
  }
  void Attention(TensorView out, TensorView q, const KvCache& cache, std::span<const AttentionSeq> seqs,
                 const AttentionParams& p) override {
    Time("Attention", [&] { in_->Attention(out, q, cache, seqs, p); });
  }
  void GatherRows(TensorView out, TensorView x, std::span<const int32_t> rows) override {
    Time("GatherRows", [&] { in_->GatherRows(out, x, rows); });
  }
  void ToHost(TensorView src, float* dst) override { Time("ToHost", [&] { in_->ToHost(src, dst); }); }
  MemoryInfo QueryMemory() override { return in_->QueryMemory(); }
  Tensor UploadOwned(TensorView host) override { return in_->UploadOwned(host); }
  bool SampleRows(TensorView logits, std::span<const SampleSpec> specs, std::span<SampleResult> out) override {
    return Time("SampleRows", [&] { return in_->SampleRows(logits, specs, out); });
  }
  void ArgMax(TensorView logits, int32_t* ids) override { Time("ArgMax", [&] { in_->ArgMax(logits, ids); }); }

 private:
  std::unique_ptr<Backend> in_;
  std::map<std::string, OpTime> times_;
  Clock::time_point since_;
};

}  // namespace

std::unique_ptr<Backend> WithOpProfile(std::unique_ptr<Backend> inner, OpProfile** profile) {
  auto p = std::make_unique<ProfilingBackend>(std::move(inner));
  *profile = p.get();
  return p;
}

}  // namespace petrel::kernels
