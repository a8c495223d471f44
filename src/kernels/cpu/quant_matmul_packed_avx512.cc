// AVX-512 VNNI matmul over packed Q8_0 / Q4_0 / Q4_1 / Q8_A weights (layout and arithmetic in
// quant_matmul_packed.h). A register tile is G groups of 16 rows x TT tokens: per 32-block, each
// 64-byte weight vector (4-bit types: its low or high nibbles) meets TT activation broadcasts (4
// int8 each, vpdpbusd's memory-broadcast operand), the integer accumulators start at
// -offset * sum(qx), and the block ends with one int -> f32 conversion and one fma by (16 row
// scales) x dx per (group, token), plus (Q4_1 / Q8_A) one fma by the 16 mins x dx sum(qx). Decode
// (T = 1..8) streams the weights once - Q4_0 / Q4_1 at T = 1..2 through DecodeQ4 -; prefill
// takes kTokenChunk tokens at a time (their int8 rows stay in L2) and walks them in tiles of 4
// over each pair of groups.
// Compiled with -mavx512f/bw/vl/dq/vnni + F16C; chosen at run time.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/cpu/quant_matmul_packed.h"

namespace petrel::kernels::cpu {

namespace {

constexpr int64_t kTokenChunk = 128;
#ifndef PETREL_PACKED_TILE
#define PETREL_PACKED_TILE 4
#endif
constexpr int kTile = PETREL_PACKED_TILE;  // tokens per prefill tile (at most 6)
#ifndef PETREL_PACKED_KCHUNK
#define PETREL_PACKED_KCHUNK 16
#endif
// Prefill: blocks per pass over a token chunk (bounds the weights of a tile to 16 KB, L1; 8..96
// measured the same within the noise of the shared VM).
constexpr int64_t kKChunk = PETREL_PACKED_KCHUNK;
#ifndef PETREL_PACKED_PREFETCH
#define PETREL_PACKED_PREFETCH 1024
#endif
// Decode: software prefetch of each group's weight stream this many bytes ahead (0 = hardware
// prefetcher only); 1 KB measured 0-20% faster than none on one thread, DRAM-resident weights.
constexpr int64_t kPrefetchBytes = PETREL_PACKED_PREFETCH;
// Decode: each group's scales (a stream beside its codes, 32 bytes a block) are prefetched this
// many blocks ahead; the hardware prefetchers left them as demand misses. bench/weights_pass_bench
// (2 threads, the read probe between passes, alternating): a decode pass over all Qwen3-0.6B
// Q4_0 weights +2-4% (with the former block-major layout; 1, 4, 8 blocks no better than 2).
constexpr int64_t kScalePrefetchBlocks = 2;


inline __m512i Bcast(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// With one token, the 8 (Q4_0: 4 x 2) dependent vpdpbusd of a block per group would be a latency
// chain, so decode tiles keep S = 2 accumulators per group (even / odd weight vectors).
// Blocks [b_begin, b_end) of the tile; `first`: the tile's output starts from the bias, else
// from the partial sums already in out.
// kStream (decode): software prefetches of the codes kPrefetchBytes and of the scales
// kScalePrefetchBlocks ahead - the weights come from DRAM once; prefill tiles re-read them from L1.
template <DType D, int G, int TT, bool kStream = false>
void Tile(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a, int64_t g0, int64_t t0,
          int64_t b_begin, int64_t b_end, bool first) {
  constexpr int64_t CB = PackedChunkBytes(D);
  constexpr int32_t kOff = D == DType::kQ8_0 ? 128 : D == DType::kQ4_0 ? 8 : 0;
  constexpr int S = TT == 1 ? 2 : 1;
  constexpr int64_t kPrefetch = kPrefetchBytes / CB;  // in blocks
  __m512 facc[G][TT];
  for (int g = 0; g < G; ++g) {
    const int64_t n = (g0 + g) * kPackRows;
    const __m512 bias = m.bias ? _mm512_loadu_ps(m.bias + n) : _mm512_setzero_ps();
    for (int t = 0; t < TT; ++t)
      facc[g][t] = first ? bias : _mm512_loadu_ps(m.out + (t0 + t) * m.N + n);
  }
  const int8_t* xq[TT];
  const float* dx[TT];
  const int32_t* qs[TT];
  const float* ds[TT];  // Q4_1 / Q8_A: dx sum(qx) of each block, the min's factor
  for (int t = 0; t < TT; ++t) {
    xq[t] = a.q + (t0 + t) * a.nb * 32;
    dx[t] = a.dexp + (t0 + t) * a.nb * 8;
    qs[t] = a.qsum + (t0 + t) * a.nb;
    ds[t] = a.ds + (t0 + t) * a.nb;
  }
  // Consecutive blocks of a group are consecutive chunks.
  constexpr int64_t cstride = CB, sstride = PackedScaleStride(D);
  const uint8_t* wc[G];
  const uint16_t* ws[G];
  for (int g = 0; g < G; ++g) {
    wc[g] = p.codes + PackedChunk(p, g0 + g, 0) * CB;
    ws[g] = p.scales + PackedChunk(p, g0 + g, 0) * sstride;
  }
  const __m512i k0f = _mm512_set1_epi8(0x0F);
  for (int64_t b = b_begin; b < b_end; ++b) {
    if constexpr (kStream)  // each group's scales of block b + kScalePrefetchBlocks
      for (int g = 0; g < G; ++g)
        _mm_prefetch(reinterpret_cast<const char*>(ws[g] + (b + kScalePrefetchBlocks) * sstride), _MM_HINT_T0);
    __m512i acc[S][G][TT];
    for (int t = 0; t < TT; ++t) {
      const __m512i init = _mm512_set1_epi32(-kOff * qs[t][b]);
      for (int g = 0; g < G; ++g) {
        acc[0][g][t] = init;
        if constexpr (S == 2) acc[S - 1][g][t] = _mm512_setzero_si512();
      }
    }
    if constexpr (CB == 512) {  // Q8_0, Q8_A
      for (int j = 0; j < 8; ++j) {
        __m512i w[G];
        for (int g = 0; g < G; ++g) {
          if constexpr (kPrefetch > 0 && kStream)
            _mm_prefetch(reinterpret_cast<const char*>(wc[g] + (b + kPrefetch) * cstride + j * 64), _MM_HINT_T0);
          w[g] = _mm512_load_si512(wc[g] + b * cstride + j * 64);
        }
        for (int t = 0; t < TT; ++t) {
          const __m512i xv = Bcast(xq[t] + b * 32 + 4 * j);
          for (int g = 0; g < G; ++g) acc[j % S][g][t] = _mm512_dpbusd_epi32(acc[j % S][g][t], w[g], xv);
        }
      }
    } else {
      for (int j = 0; j < 4; ++j) {
        __m512i lo[G], hi[G];
        for (int g = 0; g < G; ++g) {
          if constexpr (kPrefetch > 0 && kStream)
            _mm_prefetch(reinterpret_cast<const char*>(wc[g] + (b + kPrefetch) * cstride + j * 64), _MM_HINT_T0);
          const __m512i raw = _mm512_load_si512(wc[g] + b * cstride + j * 64);
          lo[g] = _mm512_and_si512(raw, k0f);
          hi[g] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), k0f);
        }
        for (int t = 0; t < TT; ++t) {
          const __m512i xl = Bcast(xq[t] + b * 32 + 4 * j);
          const __m512i xh = Bcast(xq[t] + b * 32 + 16 + 4 * j);
          for (int g = 0; g < G; ++g) {
            acc[0][g][t] = _mm512_dpbusd_epi32(acc[0][g][t], lo[g], xl);
            acc[S - 1][g][t] = _mm512_dpbusd_epi32(acc[S - 1][g][t], hi[g], xh);
          }
        }
      }
    }
    for (int g = 0; g < G; ++g) {
      const __m512 dw = _mm512_cvtph_ps(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(ws[g] + b * sstride)));
      for (int t = 0; t < TT; ++t) {
        __m512i sum = acc[0][g][t];
        if constexpr (S == 2) sum = _mm512_add_epi32(sum, acc[S - 1][g][t]);
        facc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(dx[t][b * 8])), facc[g][t]);
      }
      if constexpr (PackedHasMin(D)) {
        const __m512 mw = _mm512_cvtph_ps(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(ws[g] + b * sstride + kPackRows)));
        for (int t = 0; t < TT; ++t)
          facc[g][t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(ds[t][b]), facc[g][t]);
      }
    }
  }
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < TT; ++t)
      _mm512_storeu_ps(m.out + (t0 + t) * m.N + (g0 + g) * kPackRows, facc[g][t]);
}

// The tiles of tokens [t_begin, t_end) over groups [g0, g0 + G) and blocks [b0, b1). The first
// tile meets the blocks from DRAM and streams them with the decode prefetches (which run on into
// the next K chunk); the others find them in L1. weights_pass_bench --tokens T (alternating
// passes, fraction of the probe): Q8_0 T = 9 / 16 / 32 0.38 / 0.28 / 0.21 -> 0.47 / 0.32 / 0.26,
// Q4_0 0.26 / 0.18 / 0.12 -> 0.38 / 0.24 / 0.15; decode_batch_bench Q4_0 --pure --batch 12 / 16
// 226 / 232 -> 250 / 256 tok/s; pp512 the same within noise.
template <DType D, int G>
void Tokens(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a, int64_t g0,
            int64_t t_begin, int64_t t_end, int64_t b0, int64_t b1) {
  const bool first = b0 == 0;
  int64_t t = t_begin;
  if (t + kTile <= t_end) Tile<D, G, kTile, true>(m, p, a, g0, t, b0, b1, first), t += kTile;
  for (; t + kTile <= t_end; t += kTile) Tile<D, G, kTile>(m, p, a, g0, t, b0, b1, first);
  switch (t_end - t) {
    case 5: Tile<D, G, 5>(m, p, a, g0, t, b0, b1, first); break;
    case 4: Tile<D, G, 4>(m, p, a, g0, t, b0, b1, first); break;
    case 3: Tile<D, G, 3>(m, p, a, g0, t, b0, b1, first); break;
    case 2: Tile<D, G, 2>(m, p, a, g0, t, b0, b1, first); break;
    case 1: Tile<D, G, 1>(m, p, a, g0, t, b0, b1, first); break;
    default: break;
  }
}

// One- and two-token Q4_0 / Q4_1 decode over groups [g0, g0 + G): the loop that streams a 4-bit
// model's weights from DRAM. At two threads it is bound by how far ahead of use the core has its
// loads in flight, and that reach (the reorder window) shrinks with every instruction spent per
// weight byte: a loads-only pass over the same addresses streamed 12-19% faster than the general
// Tile did. So per 64-byte vector only a prefetch, two masks (each folding the load) and two
// vpdpbusd: the high nibbles are multiplied in place (raw & 0xF0 = 16 hi), into their own
// accumulator (Q4_0: it starts at -128 sum(qx)) shifted right by 4 at the block's end - exact,
// every term is a multiple of 16 - instead of a shift and a mask per vector; and 8 groups share
// each activation broadcast. In-process alternation, `petrel bench` Q4_0 tg128: +6-7% over the
// Tile (the same loop in 4-group tiles: no gain). Lane sums stay far inside int32
// (|16 hi x| <= 240 * 128, 16 of them a block). Q4_1 adds its min term, m dx sum(qx), per block.
// Two tokens (two sequences' decode rows) share each loaded vector in 4-group tiles: +4.5-7% over
// the Tile in bench/decode_batch_bench --batch 2 (four alternating pairs, Q4_0 --pure).
template <DType D, int G, int64_t NB, int TT>
void DecodeQ4(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a, int64_t g0) {
  constexpr int64_t CB = PackedChunkBytes(D), SS = PackedScaleStride(D);
  const int64_t nb = NB > 0 ? NB : p.nb;
  // Group g's block b is chunk (g0 + g) nb + b. With nb known at compile time every stream is one
  // pointer (codes, scales) plus a constant; with nb at run time a pointer per group (GCC spills
  // them for 8 groups - hence G <= 4 there).
  static_assert(NB > 0 || G <= 4);
  const uint8_t* codes = p.codes + PackedChunk(p, g0, 0) * CB;
  const uint16_t* scales = p.scales + PackedChunk(p, g0, 0) * SS;
  const uint8_t* wc[G];
  const uint16_t* ws[G];
  __m512 facc[G][TT];
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < TT; ++t)
      facc[g][t] = m.bias ? _mm512_loadu_ps(m.bias + (g0 + g) * kPackRows) : _mm512_setzero_ps();
    wc[g] = codes + g * nb * CB;
    ws[g] = scales + g * nb * SS;
  }
  auto code_at = [&](int g, int64_t b) {
    return NB > 0 ? codes + (g * NB + b) * CB : wc[g] + b * CB;
  };
  auto scale_at = [&](int g, int64_t b) {
    return NB > 0 ? scales + (g * NB + b) * SS : ws[g] + b * SS;
  };
  const __m512i lo_mask = _mm512_set1_epi8(0x0F),
                hi_mask = _mm512_set1_epi8(static_cast<char>(0xF0));
  for (int64_t b = 0; b < nb; ++b) {
    for (int g = 0; g < G; ++g)
      _mm_prefetch(reinterpret_cast<const char*>(scale_at(g, b + kScalePrefetchBlocks)),
                   _MM_HINT_T0);
    __m512i acc_lo[G][TT], acc_hi[G][TT];
    for (int t = 0; t < TT; ++t) {
      const __m512i hi_init =
          _mm512_set1_epi32(D == DType::kQ4_0 ? -128 * a.qsum[t * a.nb + b] : 0);
      for (int g = 0; g < G; ++g) acc_lo[g][t] = _mm512_setzero_si512(), acc_hi[g][t] = hi_init;
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      __m512i xl[TT], xh[TT];
      for (int t = 0; t < TT; ++t) {
        xl[t] = Bcast(a.q + (t * a.nb + b) * 32 + 4 * j);
        xh[t] = Bcast(a.q + (t * a.nb + b) * 32 + 16 + 4 * j);
      }
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) {
        const uint8_t* c = code_at(g, b) + j * 64;
        _mm_prefetch(reinterpret_cast<const char*>(c) + kPrefetchBytes, _MM_HINT_T0);
        const __m512i raw = _mm512_load_si512(c);
        const __m512i lo = _mm512_and_si512(raw, lo_mask), hi = _mm512_and_si512(raw, hi_mask);
        for (int t = 0; t < TT; ++t) {
          acc_lo[g][t] = _mm512_dpbusd_epi32(acc_lo[g][t], lo, xl[t]);
          acc_hi[g][t] = _mm512_dpbusd_epi32(acc_hi[g][t], hi, xh[t]);
        }
      }
    }
    for (int g = 0; g < G; ++g) {
      const __m512 dw =
          _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scale_at(g, b))));
      for (int t = 0; t < TT; ++t) {
        const __m512i sum = _mm512_add_epi32(acc_lo[g][t], _mm512_srai_epi32(acc_hi[g][t], 4));
        facc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(a.dexp[(t * a.nb + b) * 8])),
                                     facc[g][t]);
      }
      if constexpr (PackedHasMin(D)) {
        const __m512 mw = _mm512_cvtph_ps(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(scale_at(g, b) + kPackRows)));
        for (int t = 0; t < TT; ++t)
          facc[g][t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(a.ds[t * a.nb + b]), facc[g][t]);
      }
    }
  }
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < TT; ++t)
      _mm512_storeu_ps(m.out + t * m.N + (g0 + g) * kPackRows, facc[g][t]);
}

// Groups [g_begin, g_end): one token 8 at a time when the blocks per row are the compile-time NB,
// then 4, 1; two tokens 4 at a time (8 would not fit the registers).
template <DType D, int64_t NB, int TT>
void DecodeQ4Groups(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a, int64_t g_begin,
                    int64_t g_end) {
  int64_t g = g_begin;
  if constexpr (NB > 0 && TT == 1)
    for (; g + 8 <= g_end; g += 8) DecodeQ4<D, 8, NB, TT>(m, p, a, g);
  for (; g + 4 <= g_end; g += 4) DecodeQ4<D, 4, TT == 1 ? 0 : NB, TT>(m, p, a, g);
  for (; g < g_end; ++g) DecodeQ4<D, 1, 0, TT>(m, p, a, g);
}

// 8-group tiles for the row lengths K = 32 nb of common models' projections (hidden sizes 896 ..
// 5120, intermediate sizes 3072 .. 14336); any other K runs in 4-group tiles (no faster than
// Tile<kQ4_0, 4, 1>: the 8-group gain needs the constant strides).
using ListedBlocksPerRow = std::integer_sequence<int64_t, 28, 32, 48, 64, 80, 96, 112, 128, 152,
                                                 160, 192, 256, 304, 344, 448>;

template <DType D, int TT, int64_t... NB>
void DecodeQ4Any(std::integer_sequence<int64_t, NB...>, const MatMulArgs& m, const PackedQuant& p,
                 const QuantActs& a, int64_t g_begin, int64_t g_end) {
  const bool listed =
      ((p.nb == NB && (DecodeQ4Groups<D, NB, TT>(m, p, a, g_begin, g_end), true)) || ...);
  if (!listed) DecodeQ4Groups<D, 0, TT>(m, p, a, g_begin, g_end);
}

// Decode rows (T <= 4) over groups [g_begin, g_end) in tiles of GT groups x T tokens, each with
// the whole K and the streaming prefetches: every weight vector comes from DRAM once and meets
// all T rows. weights_pass_bench --tokens T (Qwen3-0.6B's matrices, alternating passes, fraction
// of the probe), against the prefill tiles (2 groups x 16-block K chunks, no prefetch) that T = 3
// and 4 took before: Q8_0 T = 3 0.60 / 0.81 -> 0.86 / 0.89, T = 4 0.59 / 0.74 -> 0.75 / 0.90;
// Q4_0 T = 3 0.69 -> 0.86, T = 4 0.69 -> 0.84; and with the prefetches at T = 2 (Q8_0) 0.85 /
// 0.96 -> 0.92 / 0.98. Three tokens in 2-group tiles: 0.94x; 4 groups x 4 tokens do not fit the
// registers. From five rows on the arithmetic grows into the stream, but whole-K tiles still beat
// the prefill tiles: Q8_0 T = 5 / 6 / 8 0.49 / 0.52 / 0.38 -> 0.65 / 0.76 / 0.50, Q4_0 0.38 /
// 0.35 / 0.30 -> 0.58 / 0.50 / 0.41 (2 groups up to 6 rows, 1 group for 7 and 8).
template <DType D, int TT, int GT>
void DecodeTiles(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a, int64_t g_begin,
                 int64_t g_end) {
  int64_t g = g_begin;
  for (; g + GT <= g_end; g += GT) Tile<D, GT, TT, true>(m, p, a, g, 0, 0, p.nb, true);
  for (; g < g_end; ++g) Tile<D, 1, TT, true>(m, p, a, g, 0, 0, p.nb, true);
}

template <DType D>
void Run(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a, int64_t g_begin,
         int64_t g_end) {
  if constexpr (D == DType::kQ4_0 || D == DType::kQ4_1) {
    if (m.T == 1) return DecodeQ4Any<D, 1>(ListedBlocksPerRow{}, m, p, a, g_begin, g_end);
    if (m.T == 2) return DecodeQ4Any<D, 2>(ListedBlocksPerRow{}, m, p, a, g_begin, g_end);
  }
  // Q8_0 / Q8_A decode, and 4-bit decode from three rows on, up to 8 rows: tiles of 4 groups up
  // to 3 rows (4 x 4 would spill), 2 up to 6, 1 for 7-8.
  if (WithConstant(DecodeRowCounts{}, m.T, [&](auto t) {
        constexpr int kGroups = t() <= 3 ? kPackTile : t() <= 6 ? 2 : 1;
        DecodeTiles<D, t(), kGroups>(m, p, a, g_begin, g_end);
      }))
    return;
  // Prefill: the weights of 2 groups x kKChunk blocks (16 KB of Q8_0) stay in L1 while every
  // token tile of the chunk passes over them; partial sums go through out.
  for (int64_t t0 = 0; t0 < m.T; t0 += kTokenChunk) {
    const int64_t t1 = std::min(m.T, t0 + kTokenChunk);
    for (int64_t g = g_begin; g < g_end;) {
      const int G = g + 2 <= g_end ? 2 : 1;
      for (int64_t b0 = 0; b0 < p.nb; b0 += kKChunk) {
        const int64_t b1 = std::min(p.nb, b0 + kKChunk);
        if (G == 2) Tokens<D, 2>(m, p, a, g, t0, t1, b0, b1);
        else Tokens<D, 1>(m, p, a, g, t0, t1, b0, b1);
      }
      g += G;
    }
  }
}

}  // namespace

void PackedMatMulAvx512(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a,
                        int64_t g_begin, int64_t g_end) {
  if (p.type == DType::kQ8_0) Run<DType::kQ8_0>(m, p, a, g_begin, g_end);
  else if (p.type == DType::kQ4_0)
    Run<DType::kQ4_0>(m, p, a, g_begin, g_end);
  else if (p.type == DType::kQ4_1)
    Run<DType::kQ4_1>(m, p, a, g_begin, g_end);
  else
    Run<DType::kQ8_A>(m, p, a, g_begin, g_end);
}

}  // namespace petrel::kernels::cpu
