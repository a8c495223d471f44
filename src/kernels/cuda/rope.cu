#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rope.cuh"

namespace petrel::kernels::cuda {

namespace {

// One block per token. The angle is float(pos) * inv_freq[i] rounded to f32, exactly as HF and
// the CPU backend compute it; cos/sin of that f32 angle are then taken in double (angles reach
// thousands of radians, where single-precision argument reduction would cost accuracy). Each
// token needs only head_dim/2 of them, shared by all heads through shared memory.
__global__ void RopeKernel(RopeArgs a) {
  PdlLaunchDependents();
  PdlWait();
  extern __shared__ float cs[];  // [half] cos, then [half] sin
  const int half = a.head_dim / 2;
  const int64_t t = blockIdx.x;
  const float pos = (float)a.positions[t];
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float ang = pos * a.inv_freq[i];
    double s, c;
    sincos((double)ang, &s, &c);
    cs[i] = (float)c * a.attention_scaling;
    cs[half + i] = (float)s * a.attention_scaling;
  }
  __syncthreads();
  float* row = a.x + t * a.n_heads * a.head_dim;
  for (int j = threadIdx.x; j < a.n_heads * half; j += blockDim.x) {
    const int h = j / half, i = j % half;
    float* v = row + h * a.head_dim;
    const float x0 = v[i], x1 = v[i + half];
    v[i] = x0 * cs[i] - x1 * cs[half + i];
    v[i + half] = x1 * cs[i] + x0 * cs[half + i];
  }
}

}  // namespace

void LaunchRope(const RopeArgs& a, cudaStream_t stream) {
  if (a.n_tokens == 0) return;
  const int half = a.head_dim / 2;
  LaunchPdl(RopeKernel, (unsigned)a.n_tokens, 128, 2 * half * sizeof(float), stream, a);
}

}  // namespace petrel::kernels::cuda
