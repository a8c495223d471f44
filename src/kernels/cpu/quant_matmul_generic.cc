// Quantized matmul: the activation quantizer, the dispatcher over threads, and the portable kernel
// (plain loops; the "scalar" ISA level and CPUs without AVX2). See quant_matmul.h for the method.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/quant_blocks.h"
#include "core/thread_pool.h"
#include "kernels/cpu/quant_matmul.h"

namespace petrel::kernels::cpu {

void QuantizeActs(const float* x, QuantActs& a, int64_t t_begin, int64_t t_end) {
  const int64_t K = a.K, nb_real = K / quant::kBlock;
  for (int64_t t = t_begin; t < t_end; ++t) {
    const float* xr = x + t * K;
    int8_t* q = a.q + t * a.nb * quant::kBlock;
    float* dexp = a.dexp + t * a.nb * 8;
    float* ds = a.ds + t * a.nb;
    int32_t* qsum = a.qsum ? a.qsum + t * a.nb : nullptr;
    for (int64_t b = 0; b < a.nb; ++b) {
      if (b >= nb_real) {  // padding block
        std::fill(q + b * 32, q + b * 32 + 32, 0);
        std::fill(dexp + b * 8, dexp + b * 8 + 8, 0.0f);
        ds[b] = 0;
        if (qsum) qsum[b] = 0;
        continue;
      }
      const float* v = xr + b * 32;
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      int sum = 0;
      for (int i = 0; i < 32; ++i) {
        const int qi = (int)std::nearbyint(v[i] * id);
        q[b * 32 + i] = (int8_t)qi;
        sum += qi;
      }
      std::fill(dexp + b * 8, dexp + b * 8 + 8, d);
      ds[b] = d * (float)sum;
      if (qsum) qsum[b] = sum;
    }
  }
}

namespace {

// One weight row as unsigned codes u[K], scales dw[nb] and offsets c[nb] (w = dw * u + c).
void UnpackRow(const void* w, DType t, int64_t nb, uint8_t* u, float* dw, float* c) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* ub = u + b * 32;
    switch (t) {
      case DType::kQ8_0: {
        const auto& blk = static_cast<const quant::BlockQ8_0*>(w)[b];
        for (int i = 0; i < 32; ++i) ub[i] = (uint8_t)(blk.q[i] + 128);
        dw[b] = F16ToF32(blk.d);
        c[b] = -128.0f * dw[b];
        break;
      }
      case DType::kQ4_0: {
        const auto& blk = static_cast<const quant::BlockQ4_0*>(w)[b];
        for (int i = 0; i < 32; ++i) ub[i] = (uint8_t)quant::Nibble(blk.q, i);
        dw[b] = F16ToF32(blk.d);
        c[b] = -8.0f * dw[b];
        break;
      }
      case DType::kQ4_1: {
        const auto& blk = static_cast<const quant::BlockQ4_1*>(w)[b];
        for (int i = 0; i < 32; ++i) ub[i] = (uint8_t)quant::Nibble(blk.q, i);
        dw[b] = F16ToF32(blk.d);
        c[b] = F16ToF32(blk.m);
        break;
      }
      case DType::kQ8_A: {
        const auto& blk = static_cast<const quant::BlockQ8_A*>(w)[b];
        for (int i = 0; i < 32; ++i) ub[i] = blk.q[i];
        dw[b] = F16ToF32(blk.d);
        c[b] = F16ToF32(blk.m);
        break;
      }
      default:
        PETREL_CHECK(false) << "quantized matmul: not a block type: " << DTypeName(t);
    }
  }
}

}  // namespace

void QuantMatMulGeneric(const MatMulArgs& m, const QuantActs& acts, int64_t n_begin, int64_t n_end) {
  const int64_t nb = m.K / quant::kBlock;
  const size_t row_bytes = DTypeBytes(m.w_dtype, m.K);
  std::vector<uint8_t> u(m.K);
  std::vector<float> dw(nb), c(nb);
  for (int64_t n = n_begin; n < n_end; ++n) {
    UnpackRow(static_cast<const char*>(m.w) + n * row_bytes, m.w_dtype, nb, u.data(), dw.data(),
              c.data());
    for (int64_t t = 0; t < m.T; ++t) {
      const int8_t* q = acts.q + t * acts.nb * 32;
      const float* dexp = acts.dexp + t * acts.nb * 8;
      const float* ds = acts.ds + t * acts.nb;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t dot = 0;
        for (int i = 0; i < 32; ++i) dot += (int32_t)u[b * 32 + i] * (int32_t)q[b * 32 + i];
        acc += dw[b] * dexp[b * 8] * (float)dot + c[b] * ds[b];
      }
      m.out[t * m.N + n] = acc + (m.bias ? m.bias[n] : 0.0f);
    }
  }
}

QuantActs PrepareQuantActs(const MatMulArgs& m, ThreadPool& pool, Isa isa) {
  // Scratch for the quantized activations, reused across calls on this thread.
  thread_local std::vector<int8_t> q_buf;
  thread_local std::vector<float> dexp_buf, ds_buf;
  thread_local std::vector<int32_t> qsum_buf;
  QuantActs acts;
  acts.T = m.T;
  acts.K = m.K;
  acts.nb = (m.K / quant::kBlock + 1) / 2 * 2;
  q_buf.resize((size_t)(m.T * acts.nb * 32) + 64);
  dexp_buf.resize((size_t)(m.T * acts.nb * 8) + 16);
  ds_buf.resize((size_t)(m.T * acts.nb));
  qsum_buf.resize((size_t)(m.T * acts.nb));
  acts.q = q_buf.data();
  acts.dexp = dexp_buf.data();
  acts.ds = ds_buf.data();
  acts.qsum = qsum_buf.data();
  const auto quantize = isa == Isa::kAvx512 ? QuantizeActsAvx512 : QuantizeActs;
  if (m.T >= 8) {
    pool.ParallelFor(m.T, 1, [&](int64_t b, int64_t e, int) { quantize(m.x, acts, b, e); });
  } else {
    quantize(m.x, acts, 0, m.T);
  }
  return acts;
}

void QuantMatMul(const MatMulArgs& m, ThreadPool& pool, Isa isa) {
  PETREL_CHECK(m.K % quant::kBlock == 0) << "quantized matmul: K=" << m.K << " not a multiple of 32";
  const QuantActs acts = PrepareQuantActs(m, pool, isa);
  QuantMatMulFn fn = QuantMatMulGeneric;
  switch (isa) {
    case Isa::kAvx512: fn = QuantMatMulAvx512; break;
    case Isa::kAvx2: fn = QuantMatMulAvx2; break;
    case Isa::kScalar: fn = QuantMatMulGeneric; break;
  }
  pool.ParallelFor(m.N, kPanelRows * 4, [&](int64_t b, int64_t e, int) { fn(m, acts, b, e); });
}

}  // namespace petrel::kernels::cpu
