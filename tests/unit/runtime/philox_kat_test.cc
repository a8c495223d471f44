// The Philox4x32-10 generator of the device sampler (kernels/cuda/sample.cu) against the
// known-answer vectors published with Random123 (Salmon et al., SC'11; kat_vectors,
// "philox4x32 10"). Host code of the CUDA library: runs without a GPU, in CUDA builds only.
#include <gtest/gtest.h>

#include <cstdint>

#include "kernels/cuda/sample.cuh"

namespace petrel::kernels::cuda {
namespace {

TEST(Philox4x32, MatchesRandom123KnownAnswers) {
  struct Kat {
    uint32_t counter[4], key[2], want[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    uint32_t out[4];
    Philox4x32(k.counter, k.key, out);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], k.want[i]) << "word " << i;
  }
}

}  // namespace
}  // namespace petrel::kernels::cuda
