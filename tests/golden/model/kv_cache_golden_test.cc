// Golden tests of the reduced-precision KV caches on the CPU: qwen3-tiny's logits against the
// float32 transformers references (tests/fixtures/refs.json) with the cache in bf16 and in int8
// (core/kv_quant.h: int8 codes with one f32 scale per token and kv head), matmuls in f32 so only the
// cache differs from the exact path. The bounds are about twice the measured worst |delta| (bf16
// 0.055, int8 0.173 at commit time): this random-weight model has logits of ~16 with little margin,
// so a relative error of ~0.4% per cached element (int8: up to max|x|/254) shows at that size; the
// quality of int8 KV on a trained model is in docs/PERFORMANCE.md. Greedy steps whose reference
// margin exceeds twice the bound must still pick the reference token.
#include <gtest/gtest.h>

#include "../golden_check.h"
#include "model/model.h"

namespace petrel::model {
namespace {

float RunWithKv(DType kv_dtype, float bound) {
  const std::string fx = PETREL_FIXTURES;
  Json refs = golden::LoadRefs(fx + "/refs.json");
  LoadOptions o;
  o.n_threads = 2;
  o.matmul_precision = "f32";
  auto m = LoadModel(fx + "/qwen3-tiny", o);
  EXPECT_TRUE(m.ok()) << m.error().ToString();
  if (!m.ok()) return 0;
  const golden::Tolerance tol{.logit = bound, .margin = 2 * bound, .kv_dtype = kv_dtype};
  return golden::CheckCases(m->get(), nullptr, refs["base"], golden::IdsOf(refs["probe_ids"]),
                            std::string("qwen3-tiny ") + DTypeName(kv_dtype) + " KV", tol);
}

TEST(KvCacheGolden, Qwen3TinyBf16KvMatchesTransformers) { EXPECT_GT(RunWithKv(DType::kBF16, 0.1f), 1e-4f); }

TEST(KvCacheGolden, Qwen3TinyInt8KvMatchesTransformers) {
  // Larger than bf16's error: the cache really is int8 (an f32 cache gives ~1e-5).
  EXPECT_GT(RunWithKv(DType::kI8, 0.3f), 0.06f);
}

}  // namespace
}  // namespace petrel::model
