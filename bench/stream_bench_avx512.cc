// stream_bench: how fast can 2 threads read ~1.2 GB of bf16 weights through the one-token (T = 1)
// matmul pattern, against the plain read probe of `petrel bench`? Answers whether the access
// pattern (16 interleaved row streams per tile), the compute, the software prefetch or the
// per-matrix barriers keep decode below the bandwidth bound (docs/PERFORMANCE.md, issue 2).
//
//   stream_bench [--threads 2] [--reps 5] [--rounds 1] [--model 1] [--thp 0|1] [--only NAME,NAME]
//                [--interleave 0|1]
//
// --interleave 1: one pass of each selected variant per rep, in turn, and each variant's median
// ratio to the first selected one over the reps. The VM's bandwidth drifts by tens of percent
// between seconds; variant after variant (the default) compares different minutes.
// The buffer is the Qwen3-0.6B decode's weights (28 x q/k/v/o/gate/up/down + the 151936-row LM
// head, bf16) in one allocation; --model 0 treats it as one [N, 1024] matrix (no barriers).
// Variants (each a full pass, GB/s of weights, best and median of --reps passes):
//   probe            uint64 sums over each thread's contiguous half of every matrix
//   probeflat        the same over the whole buffer as one range (`petrel bench`'s probe)
//   rowsR[-nofma]    R-row tiles as matmul_avx512.cc's DotTile<bf16, R, 1>, prefetch as there
//   ...-pfX          prefetch variants (none, t1/t2/nta hint, 2 tiles ahead, whole next tile)
//   eo16             as rows16, one 64-byte load per row and step (even/odd bf16 halves)
//   seq16-pfX        rows one after the other (one sequential stream), prefetch X ahead or none
//   panel16          16-row interleaved layout [N/16][K/32][16][32]: one sequential stream
//   ...-static       each thread a fixed half of every matrix (else chunks from a counter)
//   ...-own          each thread its own half in 64-row chunks, then the other's (OwnedFor)
//   seqloads16 / seqeo16 / seqdp16   as seq16 with other instruction mixes (SeqMixed), also
//   seqloads32b16 (32-byte loads) and seqscalar16 (the probe's 8-byte loads, row by row)
//   seqaccA          seq16 with A accumulators (SeqAcc)
//   sequnpack16 / sequnpack1 / seqsplit16   64-byte loads converted by unpacking with zeros
//                    (folded twice by GCC / once) or by two 32-byte zero-extensions (SeqWide)
//   abl0..abl4       ablations of one 64-byte load per line (SeqAbl)
//   blkRxKB          R rows in K blocks of KB elements, x of a block in registers (SeqBlk)
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/read_probe.h"
#include "core/thread_pool.h"

using namespace petrel;

namespace {

struct Mat {
  const uint16_t* w;
  int64_t N, K;
};

enum Pf { kPfNone, kPfNextT0, kPfNextT1, kPfNextT2, kPfNextNta, kPfNext2T0, kPfBlock };

inline __m512 Bf16(const uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

template <int hint>
inline void Prefetch(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), (_mm_hint)hint);
}

// R rows [n, n+R) of a row-major [N, K] bf16 matrix dotted with x (K % 32 == 0).
template <int R, bool kFma, Pf pf>
void Tile(const Mat& m, const float* x, float* out, int64_t n) {
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const uint16_t* w = m.w + n * m.K;
  const int64_t tile = R * m.K;  // elements
  if constexpr (pf == kPfBlock)
    for (int64_t off = 0; off < tile * 2; off += 64) Prefetch<_MM_HINT_T0>(reinterpret_cast<const char*>(w + tile) + off);
  __m512i orr = _mm512_setzero_si512();
  for (int64_t k = 0; k < m.K; k += 32) {
    for (int r = 0; r < R; ++r) {
      const uint16_t* p = w + r * m.K + k;
      if constexpr (pf == kPfNextT0) Prefetch<_MM_HINT_T0>(p + tile);
      if constexpr (pf == kPfNextT1) Prefetch<_MM_HINT_T1>(p + tile);
      if constexpr (pf == kPfNextT2) Prefetch<_MM_HINT_T2>(p + tile);
      if constexpr (pf == kPfNextNta) Prefetch<_MM_HINT_NTA>(p + tile);
      if constexpr (pf == kPfNext2T0) Prefetch<_MM_HINT_T0>(p + 2 * tile);
      if constexpr (kFma) {
        acc[r] = _mm512_fmadd_ps(Bf16(p), _mm512_loadu_ps(x + k), acc[r]);
        acc[r] = _mm512_fmadd_ps(Bf16(p + 16), _mm512_loadu_ps(x + k + 16), acc[r]);
      } else {
        orr = _mm512_or_si512(orr, _mm512_loadu_si512(p));
      }
    }
  }
  if constexpr (!kFma) acc[0] = _mm512_castsi512_ps(orr);
  for (int r = 0; r < R; ++r) out[n + r] = _mm512_reduce_add_ps(acc[r]);
}

// Panel layout: group g of 16 rows is [K/32][16][32] bf16, i.e. one contiguous 32 K-byte stream.
template <Pf pf>
void Panel(const Mat& m, const float* x, float* out, int64_t n) {
  __m512 acc[16];
  for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
  const uint16_t* w = m.w + n * m.K;
  for (int64_t k = 0; k < m.K; k += 32, w += 16 * 32) {
    const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
    for (int r = 0; r < 16; ++r) {
      if constexpr (pf != kPfNone) Prefetch<_MM_HINT_T0>(w + r * 32 + 2048);  // 4 KB ahead
      acc[r] = _mm512_fmadd_ps(Bf16(w + r * 32), x0, acc[r]);
      acc[r] = _mm512_fmadd_ps(Bf16(w + r * 32 + 16), x1, acc[r]);
    }
  }
  for (int r = 0; r < 16; ++r) out[n + r] = _mm512_reduce_add_ps(acc[r]);
}

// As Tile<16, FMA, pf> but one 64-byte load per row and step: lanes hold bf16 pairs, the even
// element is the pair << 16, the odd one the pair & 0xffff0000, against x deinterleaved per 32.
template <int R, Pf pf>
void TileEo(const Mat& m, const float* xd, float* out, int64_t n) {
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const uint16_t* w = m.w + n * m.K;
  const int64_t tile = R * m.K;
  const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
  for (int64_t k = 0; k < m.K; k += 32) {
    const __m512 xe = _mm512_loadu_ps(xd + k), xo = _mm512_loadu_ps(xd + k + 16);
    for (int r = 0; r < R; ++r) {
      const uint16_t* p = w + r * m.K + k;
      if constexpr (pf == kPfNextT0) Prefetch<_MM_HINT_T0>(p + tile);
      if constexpr (pf == kPfNextT1) Prefetch<_MM_HINT_T1>(p + tile);
      const __m512i v = _mm512_loadu_si512(p);
      acc[r] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, acc[r]);
      acc[r] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)), xo, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[n + r] = _mm512_reduce_add_ps(acc[r]);
}

// R rows one after the other (row-major rows are contiguous: one sequential stream), 4
// accumulators per row, a software prefetch kDist bytes ahead of the read position.
template <int R, int kDist, int hint>
void Seq(const Mat& m, const float* x, float* out, int64_t n) {
  for (int r = 0; r < R; ++r) {
    const uint16_t* w = m.w + (n + r) * m.K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < m.K; k += 64) {
      if constexpr (kDist > 0) {
        Prefetch<hint>(w + k + kDist / 2);
        Prefetch<hint>(w + k + 32 + kDist / 2);
      }
      a0 = _mm512_fmadd_ps(Bf16(w + k), _mm512_loadu_ps(x + k), a0);
      a1 = _mm512_fmadd_ps(Bf16(w + k + 16), _mm512_loadu_ps(x + k + 16), a1);
      a2 = _mm512_fmadd_ps(Bf16(w + k + 32), _mm512_loadu_ps(x + k + 32), a2);
      a3 = _mm512_fmadd_ps(Bf16(w + k + 48), _mm512_loadu_ps(x + k + 48), a3);
    }
    out[n + r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

// As Seq<R, 0, *> with A accumulators (A / 4 steps of 64 elements per iteration).
template <int R, int A>
void SeqAcc(const Mat& m, const float* x, float* out, int64_t n) {
  for (int r = 0; r < R; ++r) {
    const uint16_t* w = m.w + (n + r) * m.K;
    __m512 a[A];
    for (int i = 0; i < A; ++i) a[i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < m.K; k += 16 * A)
#pragma GCC unroll 16
      for (int i = 0; i < A; ++i)
        a[i] = _mm512_fmadd_ps(Bf16(w + k + 16 * i), _mm512_loadu_ps(x + k + 16 * i), a[i]);
    for (int i = 1; i < A; ++i) a[0] = _mm512_add_ps(a[0], a[i]);
    out[n + r] = _mm512_reduce_add_ps(a[0]);
  }
}

// One 64-byte load per line, bf16 -> f32 in place by interleaving with zeros per 128-bit lane
// (unpacklo / unpackhi_epi16(0, v)), against x permuted the same way (kUnpack), or the 64-byte
// load split in two 32-byte halves zero-extended (kSplit).
enum SeqConv { kUnpack, kSplit, kUnpack1 };
template <int R, SeqConv kConv>
void SeqWide(const Mat& m, const float* x, float* out, int64_t n) {
  const __m512i z = _mm512_setzero_si512();
  for (int r = 0; r < R; ++r) {
    const uint16_t* w = m.w + (n + r) * m.K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < m.K; k += 64) {
      __m512i v0 = _mm512_loadu_si512(w + k), v1 = _mm512_loadu_si512(w + k + 32);
      if constexpr (kConv == kUnpack1) {  // one load per line: keep GCC from folding it twice
        asm("" : "+v"(v0));
        asm("" : "+v"(v1));
      }
      __m512 f0, f1, f2, f3;
      if constexpr (kConv != kSplit) {
        f0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v0));
        f1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v0));
        f2 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v1));
        f3 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v1));
      } else {
        f0 = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v0)), 16));
        f1 = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v0, 1)), 16));
        f2 = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v1)), 16));
        f3 = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v1, 1)), 16));
      }
      a0 = _mm512_fmadd_ps(f0, _mm512_loadu_ps(x + k), a0);
      a1 = _mm512_fmadd_ps(f1, _mm512_loadu_ps(x + k + 16), a1);
      a2 = _mm512_fmadd_ps(f2, _mm512_loadu_ps(x + k + 32), a2);
      a3 = _mm512_fmadd_ps(f3, _mm512_loadu_ps(x + k + 48), a3);
    }
    out[n + r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

// Ablations over one 64-byte load per line (not a matmul): what makes a streaming loop slower.
//   0: vpord only   1: + two x loads ORed   2: FMA(load as f32, register x)   3: vpslld, then FMA
//   4: vpord + FMA(register, register x)  (an FMA not fed by the load)
template <int R, int kAbl>
void SeqAbl(const Mat& m, const float* x, float* out, int64_t n) {
  const __m512 xr = _mm512_set1_ps(x[0]);
  for (int r = 0; r < R; ++r) {
    const uint16_t* w = m.w + (n + r) * m.K;
    __m512i o0 = _mm512_setzero_si512(), o1 = o0;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    for (int64_t k = 0; k < m.K; k += 64) {
      const __m512i v0 = _mm512_loadu_si512(w + k), v1 = _mm512_loadu_si512(w + k + 32);
      if constexpr (kAbl == 0 || kAbl == 1 || kAbl == 4) {
        o0 = _mm512_or_si512(o0, v0);
        o1 = _mm512_or_si512(o1, v1);
      }
      if constexpr (kAbl == 1) {
        o0 = _mm512_or_si512(o0, _mm512_castps_si512(_mm512_loadu_ps(x + k)));
        o1 = _mm512_or_si512(o1, _mm512_castps_si512(_mm512_loadu_ps(x + k + 16)));
      }
      if constexpr (kAbl == 2) {
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(v0), xr, a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(v1), xr, a1);
      }
      if constexpr (kAbl == 3) {
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), xr, a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), xr, a1);
      }
      if constexpr (kAbl == 4) {
        a0 = _mm512_fmadd_ps(a0, xr, xr);
        a1 = _mm512_fmadd_ps(a1, xr, xr);
      }
    }
    out[n + r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) +
                 (float)_mm512_reduce_add_epi32(_mm512_or_si512(o0, o1));
  }
}

// R rows at a time in K blocks of KB elements: the block's x (KB / 16 zmm) held in registers
// while each row's KB elements (one contiguous run) are dotted, row after row, then the next
// block: R streams advancing KB * 2 bytes at a time, no x loads per weight line.
template <int R, int KB>
void SeqBlk(const Mat& m, const float* x, float* out, int64_t n) {
  constexpr int NX = KB / 16;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const uint16_t* w = m.w + n * m.K;
  for (int64_t k0 = 0; k0 < m.K; k0 += KB) {
    __m512 xv[NX];
#pragma GCC unroll 16
    for (int i = 0; i < NX; ++i) xv[i] = _mm512_loadu_ps(x + k0 + 16 * i);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const uint16_t* p = w + r * m.K + k0;
      __m512 a = acc[r], b = _mm512_setzero_ps();
#pragma GCC unroll 16
      for (int i = 0; i < NX; i += 2) {
        a = _mm512_fmadd_ps(Bf16(p + 16 * i), xv[i], a);
        b = _mm512_fmadd_ps(Bf16(p + 16 * i + 16), xv[i + 1], b);
      }
      acc[r] = _mm512_add_ps(a, b);
    }
  }
  for (int r = 0; r < R; ++r) out[n + r] = _mm512_reduce_add_ps(acc[r]);
}

// As Seq, other instruction mixes over the same sequential stream of 64-byte lines (the numbers
// are not a matmul's - x is read as if reordered - only the access pattern and instructions):
//   kLoads:  one 64-byte load per line ORed into a register (no arithmetic)
//   kEvenOdd: one 64-byte load per line, its odd bf16 (and 0xFFFF0000) and even (shift) halves as
//            f32, two FMAs
//   kDpBf16: one 64-byte load per line, two vdpbf16ps (x as two bf16 parts)
enum SeqMix { kLoads, kEvenOdd, kDpBf16, kLoads32, kScalar };
template <int R, SeqMix kMix>
__attribute__((target("avx512bf16"))) void SeqMixed(const Mat& m, const float* x, float* out,
                                                    int64_t n) {
  const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
  for (int r = 0; r < R; ++r) {
    const uint16_t* w = m.w + (n + r) * m.K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512i o0 = _mm512_setzero_si512(), o1 = o0;
    if constexpr (kMix == kScalar) {
      o0 = _mm512_set1_epi64((long long)SumWords(reinterpret_cast<const uint64_t*>(w), 0, m.K / 4));
      out[n + r] = (float)_mm512_reduce_add_epi32(o0);
      continue;
    }
    for (int64_t k = 0; k < m.K; k += 64) {
      if constexpr (kMix == kLoads32) {
        const __m256i* q = reinterpret_cast<const __m256i*>(w + k);
        o0 = _mm512_or_si512(o0, _mm512_castsi256_si512(_mm256_or_si256(
                                     _mm256_loadu_si256(q), _mm256_loadu_si256(q + 1))));
        o1 = _mm512_or_si512(o1, _mm512_castsi256_si512(_mm256_or_si256(
                                     _mm256_loadu_si256(q + 2), _mm256_loadu_si256(q + 3))));
        continue;
      }
      __m512i v0 = _mm512_loadu_si512(w + k), v1 = _mm512_loadu_si512(w + k + 32);
      asm("" : "+v"(v0));
      asm("" : "+v"(v1));
      if constexpr (kMix == kLoads) {
        o0 = _mm512_or_si512(o0, v0);
        o1 = _mm512_or_si512(o1, v1);
      } else if constexpr (kMix == kEvenOdd) {
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(x + k),
                             a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi)),
                             _mm512_loadu_ps(x + k + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)),
                             _mm512_loadu_ps(x + k + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, hi)),
                             _mm512_loadu_ps(x + k + 48), a3);
      } else {
        const uint16_t* xb = reinterpret_cast<const uint16_t*>(x);
        a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(xb + k), (__m512bh)v0);
        a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(xb + k + 64), (__m512bh)v0);
        a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_loadu_si512(xb + k + 32), (__m512bh)v1);
        a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_loadu_si512(xb + k + 96), (__m512bh)v1);
      }
    }
    out[n + r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) +
                 (float)_mm512_reduce_add_epi32(_mm512_or_si512(o0, o1));
  }
}

using TileFn = void (*)(const Mat&, const float*, float*, int64_t);

struct Variant {
  std::string name;
  TileFn fn;  // nullptr: probe
  int rows;
  int sched;  // 0: chunks from one counter, 1: fixed halves, 2: own half first, then steal
};

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 5, model = 1, thp = 0, rounds = 1, interleave = 0;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    if (a == "--reps") reps = std::atoi(argv[i + 1]);
    if (a == "--model") model = std::atoi(argv[i + 1]);
    if (a == "--thp") thp = std::atoi(argv[i + 1]);
    if (a == "--only") only.append(",").append(argv[i + 1]).append(",");
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (a == "--interleave") interleave = std::atoi(argv[i + 1]);
  }
  const int64_t d = 1024, q = 2048, kv = 1024, f = 3072, vocab = 151936;
  std::vector<std::pair<int64_t, int64_t>> shapes;  // (N, K)
  for (int l = 0; l < 28; ++l)
    for (auto s : {std::pair{q, d}, {kv, d}, {kv, d}, {d, q}, {f, d}, {f, d}, {d, f}}) shapes.push_back(s);
  shapes.push_back({vocab, d});
  int64_t total = 0;
  for (auto [N, K] : shapes) total += N * K;
  if (!model) shapes = {{total / d, d}};
  const size_t bytes = (size_t)total * 2;
  const size_t alloc = (bytes + (2u << 20) - 1) / (2u << 20) * (2u << 20);
  uint16_t* buf = static_cast<uint16_t*>(std::aligned_alloc(2u << 20, alloc));
  if (thp) madvise(buf, alloc, MADV_HUGEPAGE);
  for (int64_t i = 0; i < total; ++i) buf[i] = (uint16_t)(0x3c00 + (i % 251));
  std::vector<Mat> mats;
  int64_t at = 0;
  for (auto [N, K] : shapes) {
    mats.push_back({buf + at, N, K});
    at += N * K;
  }
  std::vector<float> x(4 * d, 0.001f), out(std::max(vocab, total / d) + 64);
  ThreadPool pool(threads);

  std::vector<Variant> vs = {
      {"probe", nullptr, 0, 1},
      {"probeflat", nullptr, 0, 3},
      {"rows16", Tile<16, true, kPfNextT0>, 16, 0},
      {"rows16-own", Tile<16, true, kPfNextT0>, 16, 2},
      {"rows16-pft1-static", Tile<16, true, kPfNextT1>, 16, 1},
      {"rows16-pft1-own", Tile<16, true, kPfNextT1>, 16, 2},
      {"seq16-pf0-own", Seq<16, 0, _MM_HINT_T0>, 16, 2},
      {"seqloads16-own", SeqMixed<16, kLoads>, 16, 2},
      {"seqacc2-own", SeqAcc<16, 2>, 16, 2},
      {"abl0", SeqAbl<16, 0>, 16, 2},
      {"blk4x256", SeqBlk<4, 256>, 4, 2},
      {"blk8x256", SeqBlk<8, 256>, 8, 2},
      {"blk8x128", SeqBlk<8, 128>, 8, 2},
      {"blk16x128", SeqBlk<16, 128>, 16, 2},
      {"blk2x512", SeqBlk<2, 512>, 2, 2},
      {"rows2-pfnone-own", Tile<2, true, kPfNone>, 2, 2},
      {"rows4-pfnone-own", Tile<4, true, kPfNone>, 4, 2},
      {"rows2-own", Tile<2, true, kPfNextT0>, 2, 2},
      {"rows4-own", Tile<4, true, kPfNextT0>, 4, 2},
      {"abl1", SeqAbl<16, 1>, 16, 2},
      {"abl2", SeqAbl<16, 2>, 16, 2},
      {"abl3", SeqAbl<16, 3>, 16, 2},
      {"abl4", SeqAbl<16, 4>, 16, 2},
      {"sequnpack16-own", SeqWide<16, kUnpack>, 16, 2},
      {"seqsplit16-own", SeqWide<16, kSplit>, 16, 2},
      {"sequnpack1-own", SeqWide<16, kUnpack1>, 16, 2},
      {"seqacc8-own", SeqAcc<16, 8>, 16, 2},
      {"seqacc16-own", SeqAcc<16, 16>, 16, 2},
      {"seqloads32b16-own", SeqMixed<16, kLoads32>, 16, 2},
      {"seqscalar16-own", SeqMixed<16, kScalar>, 16, 2},
      {"seqeo16-own", SeqMixed<16, kEvenOdd>, 16, 2},
      {"seqdp16-own", SeqMixed<16, kDpBf16>, 16, 2},
      {"seq16-pf1k-own", Seq<16, 1024, _MM_HINT_T0>, 16, 2},
      {"seq16-pf2k-own", Seq<16, 2048, _MM_HINT_T0>, 16, 2},
      {"seq16-pf4k-own", Seq<16, 4096, _MM_HINT_T0>, 16, 2},
      {"seq16-pf8k-own", Seq<16, 8192, _MM_HINT_T0>, 16, 2},
      {"seq16-pf4kt1-own", Seq<16, 4096, _MM_HINT_T1>, 16, 2},
      {"seq16-pf8kt1-own", Seq<16, 8192, _MM_HINT_T1>, 16, 2},
      {"rows16-pft2-own", Tile<16, true, kPfNextT2>, 16, 2},
      {"rows8-pft1-own", Tile<8, true, kPfNextT1>, 8, 2},
      {"rows16-nofma-pft1-own", Tile<16, false, kPfNextT1>, 16, 2},
      {"eo16-static", TileEo<16, kPfNextT0>, 16, 1},
      {"eo16-own", TileEo<16, kPfNextT0>, 16, 2},
      {"eo16-pft1-static", TileEo<16, kPfNextT1>, 16, 1},
      {"eo16-pft1-own", TileEo<16, kPfNextT1>, 16, 2},
      {"eo8-pft1-own", TileEo<8, kPfNextT1>, 8, 2},
      {"eo8-own", TileEo<8, kPfNextT0>, 8, 2},
      {"rows16-static", Tile<16, true, kPfNextT0>, 16, 1},
      {"rows16-nofma", Tile<16, false, kPfNextT0>, 16, 0},
      {"rows16-pfnone", Tile<16, true, kPfNone>, 16, 0},
      {"rows16-pft1", Tile<16, true, kPfNextT1>, 16, 0},
      {"rows16-pft2", Tile<16, true, kPfNextT2>, 16, 0},
      {"rows16-pfnta", Tile<16, true, kPfNextNta>, 16, 0},
      {"rows16-pf2tiles", Tile<16, true, kPfNext2T0>, 16, 0},
      {"rows16-pfblock", Tile<16, true, kPfBlock>, 16, 0},
      {"rows8", Tile<8, true, kPfNextT0>, 8, 0},
      {"rows8-pfnone", Tile<8, true, kPfNone>, 8, 0},
      {"rows4", Tile<4, true, kPfNextT0>, 4, 0},
      {"rows4-pfnone", Tile<4, true, kPfNone>, 4, 0},
      {"rows1-pfnone", Tile<1, true, kPfNone>, 1, 0},
      {"panel16", Panel<kPfNextT0>, 16, 0},
      {"panel16-static", Panel<kPfNextT0>, 16, 1},
      {"panel16-pfnone", Panel<kPfNone>, 16, 0},
      {"panel16-own", Panel<kPfNextT0>, 16, 2},
      {"panel16-pfnone-own", Panel<kPfNone>, 16, 2},
  };
  std::printf("%zu matrices, %.3f GB, %d threads, thp %d\n", mats.size(), bytes / 1e9, threads, thp);
  // One full pass of variant v: GB/s of weights.
  auto pass = [&](const Variant& v) {
    std::vector<uint64_t> sums(threads, 0);
    const auto t0 = std::chrono::steady_clock::now();
    if (!v.fn && v.sched == 3) {  // `petrel bench`'s probe: the whole buffer as one range
      const uint64_t* p = reinterpret_cast<const uint64_t*>(buf);
      pool.ParallelFor((int64_t)(bytes / 8), 4096,
                       [&](int64_t b, int64_t e, int t) { sums[t] += SumWords(p, b, e); });
    }
    for (const Mat& m : mats) {
      if (!v.fn && v.sched == 3) break;
      if (!v.fn) {  // the probe: each thread sums its half of the matrix
        const int64_t n64 = m.N * m.K / 4;
        const uint64_t* p = reinterpret_cast<const uint64_t*>(m.w);
        pool.ParallelFor(n64, 4096,
                         [&](int64_t b, int64_t e, int t) { sums[t] += SumWords(p, b, e); });
        continue;
      }
      const int64_t R = v.rows;
      if (v.sched == 2) {  // each thread its own contiguous range in chunks, then the others'
        const int64_t chunk = 64;
        const int64_t n_chunks = (m.N + chunk - 1) / chunk;
        std::atomic<int64_t> next[8];
        int64_t end[8];
        for (int t = 0; t < threads; ++t) {
          next[t] = n_chunks * t / threads;
          end[t] = n_chunks * (t + 1) / threads;
        }
        pool.RunOnAll([&](int self) {
          for (int i = 0; i < threads; ++i) {
            const int t = (self + i) % threads;
            for (int64_t c; (c = next[t].fetch_add(1)) < end[t];) {
              const int64_t e = std::min(m.N, (c + 1) * chunk);
              for (int64_t n = c * chunk; n + R <= e; n += R) v.fn(m, x.data(), out.data(), n);
            }
          }
        });
      } else if (v.sched == 1) {
        pool.ParallelFor(m.N, 16, [&](int64_t b, int64_t e, int) {
          for (int64_t n = b; n + R <= e; n += R) v.fn(m, x.data(), out.data(), n);
        });
      } else {  // as CpuBackend::MatMulF32: ~8 chunks per thread from a shared counter
        const int64_t chunk = std::max<int64_t>(16, (m.N / (8 * threads) + 15) / 16 * 16);
        const int64_t n_chunks = (m.N + chunk - 1) / chunk;
        std::atomic<int64_t> next{0};
        pool.RunOnAll([&](int) {
          for (int64_t c; (c = next.fetch_add(1)) < n_chunks;) {
            const int64_t e = std::min(m.N, (c + 1) * chunk);
            for (int64_t n = c * chunk; n + R <= e; n += R) v.fn(m, x.data(), out.data(), n);
          }
        });
      }
    }
    const auto t1 = std::chrono::steady_clock::now();
    return bytes / Seconds(t0, t1) / 1e9;
  };
  auto selected = [&](const Variant& v) {
    return only.empty() ||
           only.find(std::string(",").append(v.name).append(",")) != std::string::npos;
  };
  auto report = [&](const std::string& name, std::vector<double> s) {
    std::sort(s.begin(), s.end());
    std::printf("%-18s best %6.1f GB/s  median %6.1f GB/s  (%.1f tok/s equivalent at 1.192 GB)\n",
                name.c_str(), s.back(), s[s.size() / 2], s.back() / 1.192);
    std::fflush(stdout);
  };
  if (interleave) {  // one pass of each selected variant per rep: the VM's drift hits all alike
    std::vector<const Variant*> sel;
    for (const Variant& v : vs)
      if (selected(v)) sel.push_back(&v);
    std::vector<std::vector<double>> gbs(sel.size()), ratio(sel.size());
    for (int rep = 0; rep < reps; ++rep)
      for (size_t i = 0; i < sel.size(); ++i) {
        gbs[i].push_back(pass(*sel[i]));
        ratio[i].push_back(gbs[i].back() / gbs[0].back());
      }
    for (size_t i = 0; i < sel.size(); ++i) {
      report(sel[i]->name, gbs[i]);
      std::sort(ratio[i].begin(), ratio[i].end());
      std::printf("%-18s median ratio to %s %.3f\n", "", sel[0]->name.c_str(),
                  ratio[i][ratio[i].size() / 2]);
    }
  } else {
    for (int round = 0; round < rounds; ++round)
      for (const Variant& v : vs) {
        if (!selected(v)) continue;
        std::vector<double> gbs;
        for (int rep = 0; rep < reps; ++rep) gbs.push_back(pass(v));
        report(v.name, gbs);
      }
  }
  std::free(buf);
  return 0;
}
