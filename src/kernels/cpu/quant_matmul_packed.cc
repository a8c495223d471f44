// Packed Q8_0 / Q4_0 / Q4_1 / Q8_A weights (layout in quant_matmul_packed.h): packing, the registry
// a backend keeps them in, the portable kernel on the packed layout (the scalar reference of the
// AVX-512 one, same integer arithmetic) and the dispatcher over threads.
#include "kernels/cpu/quant_matmul_packed.h"

#include <cstdlib>
#include <cstring>

#include "core/quant_blocks.h"
#include "core/thread_pool.h"

namespace petrel::kernels::cpu {

bool CanPack(DType t, int64_t N, int64_t K) {
  return (t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ4_1 || t == DType::kQ8_A) &&
         N > 0 && N % kPackRows == 0 && K > 0 && K % quant::kBlock == 0;
}

void PackGroups(const void* w, const PackedQuant& p, int64_t g_begin, int64_t g_end) {
  const int64_t nb = p.nb, cb = PackedChunkBytes(p.type), ss = PackedScaleStride(p.type);
  const size_t row_bytes = DTypeBytes(p.type, p.K);
  uint8_t* codes = const_cast<uint8_t*>(p.codes);
  uint16_t* scales = const_cast<uint16_t*>(p.scales);
  for (int64_t g = g_begin; g < g_end; ++g) {
    for (int r = 0; r < kPackRows; ++r) {
      const char* row = static_cast<const char*>(w) + (size_t)(g * kPackRows + r) * row_bytes;
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* chunk = codes + PackedChunk(p, g, b) * cb;
        uint16_t* sc = scales + PackedChunk(p, g, b) * ss;
        if (p.type == DType::kQ8_0) {
          const auto& blk = reinterpret_cast<const quant::BlockQ8_0*>(row)[b];
          sc[r] = blk.d;
          for (int j = 0; j < 8; ++j)
            for (int c = 0; c < 4; ++c) chunk[j * 64 + 4 * r + c] = (uint8_t)(blk.q[4 * j + c] + 128);
          continue;
        }
        if (p.type == DType::kQ8_A) {
          const auto& blk = reinterpret_cast<const quant::BlockQ8_A*>(row)[b];
          sc[r] = blk.d;
          sc[kPackRows + r] = blk.m;
          for (int j = 0; j < 8; ++j)
            for (int c = 0; c < 4; ++c) chunk[j * 64 + 4 * r + c] = blk.q[4 * j + c];
          continue;
        }
        const uint8_t* q;
        if (p.type == DType::kQ4_0) {
          const auto& blk = reinterpret_cast<const quant::BlockQ4_0*>(row)[b];
          sc[r] = blk.d;
          q = blk.q;
        } else {
          const auto& blk = reinterpret_cast<const quant::BlockQ4_1*>(row)[b];
          sc[r] = blk.d;
          sc[kPackRows + r] = blk.m;
          q = blk.q;
        }
        for (int j = 0; j < 4; ++j)
          for (int c = 0; c < 4; ++c)
            chunk[j * 64 + 4 * r + c] =
                (uint8_t)(quant::Nibble(q, 4 * j + c) | (quant::Nibble(q, 16 + 4 * j + c) << 4));
      }
    }
  }
}

const PackedQuant* PackedWeights::Add(const TensorView& w, ThreadPool& pool) {
  // PETREL_NO_PACK=1: keep the plain-layout kernel (A/B benchmarks, debugging).
  static const bool disabled = [] {
    const char* e = std::getenv("PETREL_NO_PACK");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  if (disabled) return nullptr;
  if (w.empty() || w.shape.rank != 2 || !CanPack(w.dtype, w.dim(0), w.dim(1))) return nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(w.data);
    if (it != map_.end()) {
      const PackedQuant& p = it->second.p;
      if (p.type == w.dtype && p.N == w.dim(0) && p.K == w.dim(1)) return &p;
      by_codes_.erase(p.codes);
      map_.erase(it);  // another weight at a released address: pack anew
    }
  }
  Entry e;
  e.p.type = w.dtype;
  e.p.N = w.dim(0);
  e.p.K = w.dim(1);
  e.p.nb = e.p.K / quant::kBlock;
  const int64_t groups = e.p.N / kPackRows;
  const size_t code_bytes = (size_t)(groups * e.p.nb * PackedChunkBytes(w.dtype));
  const size_t scale_bytes =
      (size_t)(groups * e.p.nb * PackedScaleStride(w.dtype)) * sizeof(uint16_t);
  e.bytes = (code_bytes + scale_bytes + 63) / 64 * 64;  // >= the plain tensor's bytes (same total)
  e.buf = std::unique_ptr<uint8_t, void (*)(void*)>(
      static_cast<uint8_t*>(std::aligned_alloc(64, e.bytes)), std::free);
  PETREL_CHECK(e.buf != nullptr) << "out of memory packing a " << w.shape.ToString() << " weight";
  e.p.codes = e.buf.get();
  e.p.scales = reinterpret_cast<const uint16_t*>(e.buf.get() + code_bytes);
  pool.ParallelFor(groups, 1, [&](int64_t b, int64_t en, int) { PackGroups(w.data, e.p, b, en); });
  std::lock_guard<std::mutex> lock(mu_);
  if (auto old = map_.find(w.data); old != map_.end()) by_codes_.erase(old->second.p.codes);
  auto [it, inserted] = map_.insert_or_assign(w.data, std::move(e));
  by_codes_[it->second.p.codes] = &it->second.p;
  return &it->second.p;
}

const PackedQuant* PackedWeights::Find(const void* data, DType t, int64_t N, int64_t K) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_codes_.find(data);
  if (it == by_codes_.end()) return nullptr;
  const PackedQuant& p = *it->second;
  return p.type == t && p.N == N && p.K == K ? &p : nullptr;
}

TensorView PackedView(const PackedQuant& p) {
  return TensorView{const_cast<uint8_t*>(p.codes), p.type, Shape{p.N, p.K}};
}

void PackedRowsToF32(const PackedQuant& p, std::span<const int32_t> rows, float* out) {
  const int64_t cb = PackedChunkBytes(p.type), ss = PackedScaleStride(p.type);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t g = rows[i] / kPackRows, r = rows[i] % kPackRows;
    for (int64_t b = 0; b < p.nb; ++b) {
      const uint8_t* chunk = p.codes + PackedChunk(p, g, b) * cb;
      const uint16_t* sc = p.scales + PackedChunk(p, g, b) * ss;
      float* y = out + (int64_t)i * p.K + b * quant::kBlock;
      // Rebuild the plain block (core/quant_blocks.h: f16 d, Q4_1 / Q8_A f16 m, then the codes)
      // and dequantize it as the plain tensor's would be.
      alignas(4) uint8_t blk[40];
      size_t at = 0;
      std::memcpy(blk, &sc[r], 2), at = 2;
      if (PackedHasMin(p.type)) std::memcpy(blk + 2, &sc[kPackRows + r], 2), at = 4;
      for (int e = 0; e < (cb == 512 ? 32 : 16); ++e) {  // Q4: byte e holds elements e and e + 16
        const uint8_t u = chunk[(e / 4) * 64 + 4 * r + e % 4];
        blk[at + e] = p.type == DType::kQ8_0 ? (uint8_t)(u - 128) : u;  // Q8_0: back to int8
      }
      quant::DequantizeRow(blk, p.type, y, quant::kBlock);
    }
  }
}

size_t PackedWeights::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [k, e] : map_) n += e.bytes;
  return n;
}

void PackedMatMulGeneric(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a,
                         int64_t g_begin, int64_t g_end) {
  const int64_t nb = p.nb, cb = PackedChunkBytes(p.type), ss = PackedScaleStride(p.type);
  const int32_t off = p.type == DType::kQ8_0 ? 128 : p.type == DType::kQ4_0 ? 8 : 0;
  for (int64_t g = g_begin; g < g_end; ++g) {
    for (int r = 0; r < kPackRows; ++r) {
      const int64_t n = g * kPackRows + r;
      for (int64_t t = 0; t < m.T; ++t) {
        const int8_t* xq = a.q + t * a.nb * 32;
        float acc = 0;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* chunk = p.codes + PackedChunk(p, g, b) * cb;
          int32_t dot = -off * a.qsum[t * a.nb + b];
          for (int i = 0; i < 32; ++i) {
            int u;
            if (p.type == DType::kQ8_0 || p.type == DType::kQ8_A) {
              u = chunk[(i / 4) * 64 + 4 * r + i % 4];
            } else {
              const int j = (i % 16) / 4;
              const uint8_t byte = chunk[j * 64 + 4 * r + i % 4];
              u = i < 16 ? (byte & 0xF) : (byte >> 4);
            }
            dot += u * (int32_t)xq[b * 32 + i];
          }
          const uint16_t* sc = p.scales + PackedChunk(p, g, b) * ss;
          acc += F16ToF32(sc[r]) * a.dexp[t * a.nb * 8 + b * 8] * (float)dot;
          if (PackedHasMin(p.type)) acc += F16ToF32(sc[kPackRows + r]) * a.ds[t * a.nb + b];
        }
        m.out[t * m.N + n] = acc + (m.bias ? m.bias[n] : 0.0f);
      }
    }
  }
}

void PackedQuantMatMul(const MatMulArgs& m, const PackedQuant& p, ThreadPool& pool, Isa isa) {
  PETREL_CHECK(m.K == p.K && m.N == p.N) << "packed matmul: shape mismatch";
  if (m.T <= kDecodeMaxRows) {  // decode rows: see PackedQuantMatMuls
    const PackedQuant* pp = &p;
    return PackedQuantMatMuls(std::span(&m, 1), std::span(&pp, 1), pool, isa);
  }
  const QuantActs acts = PrepareQuantActs(m, pool, isa);
  const PackedMatMulFn fn = isa == Isa::kAvx512 ? PackedMatMulAvx512 : PackedMatMulGeneric;
  // Prefill: groups in fours per thread.
  pool.ParallelFor(p.N / kPackRows, kPackTile, [&](int64_t b, int64_t e, int) { fn(m, p, acts, b, e); });
}

void PackedQuantMatMuls(std::span<const MatMulArgs> ms, std::span<const PackedQuant* const> ps,
                        ThreadPool& pool, Isa isa) {
  PETREL_CHECK(!ms.empty() && ms.size() == ps.size()) << "packed matmuls: jobs";
  if (ms[0].T > kDecodeMaxRows) {
    for (size_t i = 0; i < ms.size(); ++i) PackedQuantMatMul(ms[i], *ps[i], pool, isa);
    return;
  }
  std::vector<int64_t> groups;
  for (size_t i = 0; i < ms.size(); ++i) {
    PETREL_CHECK(ms[i].K == ps[i]->K && ms[i].N == ps[i]->N && ms[i].x == ms[0].x &&
                 ms[i].T == ms[0].T)
        << "packed matmuls: shape mismatch";
    groups.push_back(ps[i]->N / kPackRows);
  }
  const QuantActs acts = PrepareQuantActs(ms[0], pool, isa);
  const PackedMatMulFn fn = isa == Isa::kAvx512 ? PackedMatMulAvx512 : PackedMatMulGeneric;
  // Each thread streams its own share first (ThreadPool::OwnedForEach), in chunks of two decode
  // tiles: Q4_0 decode +3-5% over fixed halves on the 2-vCPU VM (128-row chunks; 64 in between).
  // Near the end of a share the chunks shrink to one tile (guided), so the threads meet within 64
  // rows of each other.
  pool.OwnedForEach(groups, kPackTile * 2,
                    [&](int j, int64_t b, int64_t e) { fn(ms[j], *ps[j], acts, b, e); }, kPackTile);
}

}  // namespace petrel::kernels::cpu
