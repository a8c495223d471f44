// Device sampling, one thread block per row of logits (see sample.cuh).
//
// The host sampler (runtime/sampler.cc) sorts candidates by logit; here nothing is sorted. The
// truncations become thresholds on an order-preserving integer key of each logit, found by radix
// select (8 bits per pass, a 256-bin histogram in shared memory, most significant byte first):
//   top_k  the k-th largest key (count histogram); ties at the threshold are kept by smallest id,
//          found by a second radix select over the ids of the tied entries, so top_k = 1 keeps
//          exactly the token ArgMax picks;
//   top_p  the key at which the cumulative probability (largest first, over the top-k survivors,
//          normalised over them as the host does) reaches top_p (mass histogram; ties at that key
//          are all kept);
//   min_p  w >= min_p, with w = exp((l - max) / T), so the top token has w = 1.
// The draw is the Gumbel-max trick (Gumbel 1954; as "exponential races" in vLLM): the survivor
// maximising (l - max) / T - log(-log u), u uniform in (0, 1), is distributed as softmax(l / T)
// restricted to the survivors. u comes from Philox4x32-10 (Salmon et al. 2011) keyed by the
// request's seed, counter (token id / 4, step): every token gets its own independent uniform, so
// the result depends only on (logits, parameters, seed, step), not on the launch.
//
// Determinism: every reduction has a fixed order (per-thread loops, then a fixed shuffle tree),
// and the histograms sum integers (probability masses in 2^-32 fixed point), whose atomic
// additions commute exactly. The same inputs give the same token on every run.
#include "kernels/cuda/sample.cuh"

#include <cfloat>
#include <climits>

#include "kernels/cuda/common.cuh"

namespace petrel::kernels::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

__host__ __device__ __forceinline__ void PhiloxImpl(const uint32_t c_in[4], const uint32_t k_in[2],
                                                    uint32_t out[4]) {
  uint32_t c0 = c_in[0], c1 = c_in[1], c2 = c_in[2], c3 = c_in[3];
  uint32_t k0 = k_in[0], k1 = k_in[1];
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

// Larger float -> larger key (negative floats reversed, sign bit flipped for positive ones).
__device__ __forceinline__ uint32_t Key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// (value, index) with ties to the smaller index; NaN never wins (as argmax.cu).
__device__ __forceinline__ void Better(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) v = ov, i = oi;
}

struct Shared {
  unsigned long long hist[256];
  float f[kWarps];
  int i[kWarps];
  unsigned long long u[kWarps];
  // FindBin's answer.
  int bin;
  unsigned long long above;
  // top-n candidates.
  int n_cand;
  float cand_v[kMaxSampleTop];
  int cand_i[kMaxSampleTop];
};

// Calls f(i, v) for every element of the row; each thread takes 4 consecutive elements per
// iteration (one 16-byte load when `vec`).
template <typename F>
__device__ __forceinline__ void ForRow(const float* row, int64_t V, bool vec, F&& f) {
  for (int64_t base = (int64_t)threadIdx.x * 4; base < V; base += (int64_t)kThreads * 4) {
    if (vec) {
      const float4 v = __ldg(reinterpret_cast<const float4*>(row + base));
      f(base, v.x), f(base + 1, v.y), f(base + 2, v.z), f(base + 3, v.w);
    } else {
      for (int j = 0; j < 4 && base + j < V; ++j) f(base + j, row[base + j]);
    }
  }
}

__device__ float BlockSum(float v, Shared& sh) {
  v = WarpSum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh.f[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = WarpSum(sh.f[lane]);
    if (lane == 0) sh.f[0] = v;
  }
  __syncthreads();
  v = sh.f[0];
  __syncthreads();
  return v;
}

__device__ void BlockArgMax(float& v, int& i, Shared& sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    Better(v, i, ov, oi);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh.f[warp] = v, sh.i[warp] = i;
  __syncthreads();
  if (warp == 0) {
    v = sh.f[lane], i = sh.i[lane];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, v, o);
      const int oi = __shfl_xor_sync(0xffffffffu, i, o);
      Better(v, i, ov, oi);
    }
    if (lane == 0) sh.f[0] = v, sh.i[0] = i;
  }
  __syncthreads();
  v = sh.f[0], i = sh.i[0];
  __syncthreads();
}

__device__ unsigned long long BlockSumU64(unsigned long long v, Shared& sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh.u[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = sh.u[lane];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) sh.u[0] = v;
  }
  __syncthreads();
  v = sh.u[0];
  __syncthreads();
  return v;
}

// Warp 0 walks the histogram from the top bin down (or from bin 0 up when `ascending`) and finds
// the bin where the running total reaches `want` (clamped to the histogram's total, so a rounding
// shortfall of masses picks the last non-empty bin). Result in sh.bin, and in sh.above the total
// of the bins before it. Lane l owns 8 consecutive bins in walking order.
__device__ void FindBin(Shared& sh, unsigned long long want, bool ascending) {
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    auto bin_of = [&](int j) { return ascending ? lane * 8 + j : 255 - (lane * 8 + j); };
    unsigned long long local = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) local += sh.hist[bin_of(j)];
    unsigned long long incl = local;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const unsigned long long t = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += t;
    }
    const unsigned long long total = __shfl_sync(0xffffffffu, incl, 31);
    if (want > total) want = total;
    if (want == 0) want = 1;  // (never for the callers: their sets are non-empty)
    const unsigned ballot = __ballot_sync(0xffffffffu, incl >= want);
    const int first = ballot ? __ffs(ballot) - 1 : 31;
    if (lane == first) {
      unsigned long long acc = incl - local;
      int pick = bin_of(7);
      for (int j = 0; j < 8; ++j) {
        const unsigned long long h = sh.hist[bin_of(j)];
        if (h && acc + h >= want) {
          pick = bin_of(j);
          break;
        }
        acc += h;
      }
      sh.bin = pick;
      sh.above = acc;
    }
  }
  __syncthreads();
}

__device__ void ClearHist(Shared& sh) {
  for (int b = threadIdx.x; b < 256; b += kThreads) sh.hist[b] = 0;
  __syncthreads();
}

// The k-th largest key (k >= 1) and the largest id that still belongs to the k best among the
// entries with that key (ties go to smaller ids): the k best are exactly the entries with
// key > thr, or key == thr and id <= idx_lim.
struct Threshold {
  uint32_t key = 0;
  uint32_t idx_lim = 0xffffffffu;
};

__device__ Threshold SelectTopK(const float* row, int64_t V, bool vec, int64_t k, Shared& sh) {
  uint32_t prefix = 0, mask = 0;
  unsigned long long want = (unsigned long long)k;
  unsigned long long n_equal = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    ClearHist(sh);
    ForRow(row, V, vec, [&](int64_t, float v) {
      const uint32_t key = Key(v);
      if ((key & mask) == prefix) atomicAdd(&sh.hist[(key >> shift) & 255u], 1ull);
    });
    __syncthreads();
    FindBin(sh, want, /*ascending=*/false);
    want -= sh.above;
    n_equal = sh.hist[sh.bin];
    prefix |= (uint32_t)sh.bin << shift;
    mask |= 0xffu << shift;
    __syncthreads();
  }
  Threshold t;
  t.key = prefix;
  if (n_equal <= want) return t;  // every entry with the threshold key is among the k best
  // Ties: the want-th smallest id among the entries equal to the threshold.
  uint32_t iprefix = 0, imask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    ClearHist(sh);
    ForRow(row, V, vec, [&](int64_t i, float v) {
      const uint32_t id = (uint32_t)i;
      if (Key(v) == prefix && (id & imask) == iprefix) atomicAdd(&sh.hist[(id >> shift) & 255u], 1ull);
    });
    __syncthreads();
    FindBin(sh, want, /*ascending=*/true);
    want -= sh.above;
    iprefix |= (uint32_t)sh.bin << shift;
    imask |= 0xffu << shift;
    __syncthreads();
  }
  t.idx_lim = iprefix;
  return t;
}

__device__ __forceinline__ bool InTop(const Threshold& t, uint32_t key, int64_t i) {
  return key > t.key || (key == t.key && (uint32_t)i <= t.idx_lim);
}

// Fixed-point probability mass (2^-32 units) of a weight in [0, 1].
__device__ __forceinline__ unsigned long long Mass(float w) {
  return (unsigned long long)__float2ull_rn(w * 4294967296.0f);
}

__global__ void __launch_bounds__(kThreads)
    SampleKernel(const float* __restrict__ logits, int64_t V, bool vec,
                 const SampleRowParams* __restrict__ params, SampleOutputs out) {
  __shared__ Shared sh;
  const int r = blockIdx.x;
  const SampleRowParams p = params[r];
  if (p.skip) return;
  const float* row = logits + (int64_t)r * V;

  // 1. Maximum (first index of it, as ArgMax).
  float m = -FLT_MAX;
  int arg = INT_MAX;
  ForRow(row, V, vec, [&](int64_t i, float v) { Better(m, arg, v, (int)i); });
  BlockArgMax(m, arg, sh);
  if (arg == INT_MAX) arg = 0;  // all NaN / -inf

  int token = arg;
  if (p.temperature > 0.0f) {
    const float inv_t = 1.0f / p.temperature;
    auto weight = [&](float v) { return __expf((v - m) * inv_t); };
    // 2. top_k threshold.
    Threshold tk;  // key 0, idx_lim max: keeps everything
    const bool use_k = p.top_k > 0 && p.top_k < V;
    if (use_k) tk = SelectTopK(row, V, vec, p.top_k, sh);
    // 3. top_p threshold over the top-k survivors, normalised over them.
    uint32_t tp = 0;
    if (p.top_p < 1.0f) {
      unsigned long long norm = 0;
      ForRow(row, V, vec, [&](int64_t i, float v) {
        if (InTop(tk, Key(v), i)) norm += Mass(weight(v));
      });
      norm = BlockSumU64(norm, sh);
      unsigned long long want = (unsigned long long)((double)p.top_p * (double)norm);
      if (want == 0) want = 1;
      uint32_t prefix = 0, mask = 0;
      for (int shift = 24; shift >= 0; shift -= 8) {
        ClearHist(sh);
        ForRow(row, V, vec, [&](int64_t i, float v) {
          const uint32_t key = Key(v);
          if ((key & mask) == prefix && InTop(tk, key, i))
            atomicAdd(&sh.hist[(key >> shift) & 255u], Mass(weight(v)));
        });
        __syncthreads();
        FindBin(sh, want, /*ascending=*/false);
        want -= sh.above;
        prefix |= (uint32_t)sh.bin << shift;
        mask |= 0xffu << shift;
        __syncthreads();
      }
      tp = prefix;
    }
    // 4. Gumbel-max draw over the survivors (top-k, top-p, min-p).
    const float min_p = p.min_p;
    const uint32_t key_pair[2] = {(uint32_t)p.seed, (uint32_t)(p.seed >> 32)};
    float best = -FLT_MAX;
    int bi = INT_MAX;
    for (int64_t base = (int64_t)threadIdx.x * 4; base < V; base += (int64_t)kThreads * 4) {
      const uint64_t group = (uint64_t)base >> 2;
      const uint32_t ctr[4] = {(uint32_t)group, (uint32_t)(group >> 32), (uint32_t)p.step,
                               (uint32_t)(p.step >> 32)};
      uint32_t rnd[4];
      PhiloxImpl(ctr, key_pair, rnd);
      float vals[4];
      if (vec) {
        const float4 v4 = __ldg(reinterpret_cast<const float4*>(row + base));
        vals[0] = v4.x, vals[1] = v4.y, vals[2] = v4.z, vals[3] = v4.w;
      } else {
        for (int j = 0; j < 4; ++j) vals[j] = base + j < V ? row[base + j] : 0.0f;
      }
      for (int j = 0; j < 4 && base + j < V; ++j) {
        const int64_t i = base + j;
        const float v = vals[j];
        const uint32_t key = Key(v);
        if (!InTop(tk, key, i) || key < tp) continue;
        const float w = weight(v);
        if (w < min_p || !(w > 0.0f)) continue;
        const float u = ((float)rnd[j] + 0.5f) * 2.3283064365386963e-10f;  // (0, 1)
        const float score = (v - m) * inv_t - __logf(-__logf(u));
        Better(best, bi, score, (int)i);
      }
    }
    BlockArgMax(best, bi, sh);
    token = bi == INT_MAX ? arg : bi;
  }

  if (p.top_logprobs < 0) {
    if (threadIdx.x == 0) {
      out.ids[r] = token;
      if (out.feed) out.feed[r] = token;
    }
    return;
  }
  // 5. Log-softmax of the raw logits: the chosen token and the n best.
  float s = 0.0f;
  ForRow(row, V, vec, [&](int64_t, float v) { s += expf(v - m); });
  s = BlockSum(s, sh);
  const float lse = m + logf(s);
  const int n = min(p.top_logprobs, kMaxSampleTop);
  if (n > 0) {
    const Threshold t = SelectTopK(row, V, vec, n < V ? (int64_t)n : V, sh);
    if (threadIdx.x == 0) sh.n_cand = 0;
    __syncthreads();
    ForRow(row, V, vec, [&](int64_t i, float v) {
      if (InTop(t, Key(v), i)) {
        const int at = atomicAdd(&sh.n_cand, 1);
        if (at < kMaxSampleTop) sh.cand_v[at] = v, sh.cand_i[at] = (int)i;
      }
    });
    __syncthreads();
    if (threadIdx.x == 0) {
      const int c = min(sh.n_cand, kMaxSampleTop);
      for (int a = 1; a < c; ++a) {  // insertion sort: value descending, id ascending
        const float v = sh.cand_v[a];
        const int id = sh.cand_i[a];
        int b = a - 1;
        while (b >= 0 && (sh.cand_v[b] < v || (sh.cand_v[b] == v && sh.cand_i[b] > id))) {
          sh.cand_v[b + 1] = sh.cand_v[b], sh.cand_i[b + 1] = sh.cand_i[b];
          --b;
        }
        sh.cand_v[b + 1] = v, sh.cand_i[b + 1] = id;
      }
      for (int a = 0; a < c; ++a) {
        out.top_ids[(int64_t)r * kMaxSampleTop + a] = sh.cand_i[a];
        out.top_logprobs[(int64_t)r * kMaxSampleTop + a] = sh.cand_v[a] - lse;
      }
    }
  }
  if (threadIdx.x == 0) {
    out.ids[r] = token;
    if (out.feed) out.feed[r] = token;
    out.logprobs[r] = row[token] - lse;
  }
}

}  // namespace

void Philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
  PhiloxImpl(counter, key, out);
}

void LaunchSample(const float* logits, int64_t rows, int64_t V, const SampleRowParams* params,
                  const SampleOutputs& out, cudaStream_t stream) {
  if (rows == 0) return;
  const bool vec = V % 4 == 0 && (uintptr_t)logits % 16 == 0;
  SampleKernel<<<(unsigned)rows, kThreads, 0, stream>>>(logits, V, vec, params, out);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace petrel::kernels::cuda
