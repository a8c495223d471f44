// GGUF reader/writer: round trip of metadata and tensors, name mapping, config from metadata,
// dequantization of every supported block type against values worked out by hand from the block
// definitions (ggml-common.h), and a fuzz-style pass over truncations and bit flips (must return
// errors, never crash or read out of bounds — run under ASan in the asan preset).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/quant_blocks.h"
#include "formats/gguf.h"
#include "formats/gguf_model.h"
#include "temp_dir.h"

namespace petrel::formats {
namespace {

std::vector<char> ReadAll(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

// A small qwen3-shaped GGUF: metadata + an F32 norm, an F16 matrix and a Q8_0 matrix.
std::string WriteSmall(const std::string& dir, std::vector<float>* q8_src) {
  OrderedJson kv;
  kv["general.architecture"] = "qwen3";
  kv["qwen3.block_count"] = 1u;
  kv["qwen3.embedding_length"] = 64u;
  kv["qwen3.feed_forward_length"] = 96u;
  kv["qwen3.attention.head_count"] = 2u;
  kv["qwen3.attention.head_count_kv"] = 1u;
  kv["qwen3.attention.key_length"] = 32u;
  kv["qwen3.attention.layer_norm_rms_epsilon"] = 1e-6f;
  kv["qwen3.rope.freq_base"] = 1000000.0f;
  kv["tokenizer.ggml.tokens"] = Json::array({"a", "b", "c"});
  std::vector<float> norm(64, 1.5f);
  std::vector<uint16_t> emb(100 * 64);
  for (size_t i = 0; i < emb.size(); ++i) emb[i] = F32ToF16((float)(i % 13) * 0.25f);
  q8_src->resize(96 * 64);
  for (size_t i = 0; i < q8_src->size(); ++i) (*q8_src)[i] = std::sin((float)i * 0.1f);
  static std::vector<char> q8;
  q8.resize(DTypeBytes(DType::kQ8_0, 96 * 64));
  quant::QuantizeRow(q8_src->data(), 96 * 64, DType::kQ8_0, q8.data());
  static std::vector<float> norm_s;
  static std::vector<uint16_t> emb_s;
  norm_s = norm;
  emb_s = emb;
  const std::string path = dir + "/m.gguf";
  EXPECT_TRUE(WriteGguf(path, kv,
                        {{"output_norm.weight", 0, {64}, norm_s.data(), 64 * 4},
                         {"token_embd.weight", 1, {64, 100}, emb_s.data(), emb_s.size() * 2},
                         {"blk.0.ffn_up.weight", 8, {64, 96}, q8.data(), q8.size()}})
                  .ok());
  return path;
}

TEST(Gguf, RoundTripMetadataTensorsAndConfig) {
  petrel::testing::TempDir tmp;
  std::vector<float> src;
  auto f = GgufFile::Open(WriteSmall(tmp.path(), &src));
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata()["general.architecture"], "qwen3");
  EXPECT_EQ(f->metadata()["tokenizer.ggml.tokens"].size(), 3u);
  const GgufTensor* up = f->Find("blk.0.ffn_up.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_TRUE(up->direct);
  EXPECT_EQ(up->dtype, DType::kQ8_0);
  EXPECT_EQ(up->shape, (Shape{96, 64}));
  std::vector<float> y(96 * 64);
  ASSERT_TRUE(DequantizeGguf(up->data, up->type, (int64_t)y.size(), y.data()).ok());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], src[i], 0.01f);
  const GgufTensor* emb = f->Find("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (Shape{100, 64}));
  EXPECT_EQ(F16ToF32(static_cast<const uint16_t*>(emb->data)[14]), 0.25f);
  auto c = ModelConfigFromGguf(*f);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->vocab_size, 100);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_TRUE(c->tie_embeddings);
}

TEST(Gguf, NameMapping) {
  EXPECT_EQ(GgufToHfName("blk.12.attn_output.weight"), "model.layers.12.self_attn.o_proj.weight");
  EXPECT_EQ(GgufToHfName("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(HfToGgufName("model.layers.3.mlp.down_proj.weight"), "blk.3.ffn_down.weight");
  EXPECT_EQ(HfToGgufName("model.layers.3.self_attn.k_norm.weight"), "blk.3.attn_k_norm.weight");
  EXPECT_EQ(GgufToHfName("rope_freqs.weight"), "");
  // Permute then un-permute is the identity; the permutation interleaves the two halves.
  std::vector<int> rows(8);
  for (int i = 0; i < 8; ++i) rows[i] = i;
  PermuteQkRows(rows.data(), 2, 4, sizeof(int));
  EXPECT_EQ(rows, (std::vector<int>{0, 2, 1, 3, 4, 6, 5, 7}));
  UnpermuteQkRows(rows.data(), 2, 4, sizeof(int));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(rows[i], i);
}

// Hand-built blocks: expected values follow the block definitions directly.
TEST(Gguf, DequantizeQ5AndKQuants) {
  // Q5_0: d = 0.5, qh bit j set for j = 0 and 17; qs[j] = 0x21 -> low 1, high 2.
  std::vector<uint8_t> q5(22, 0);
  const uint16_t half = F32ToF16(0.5f);
  std::memcpy(q5.data(), &half, 2);
  const uint32_t qh = (1u << 0) | (1u << 17);
  std::memcpy(q5.data() + 2, &qh, 4);
  for (int j = 0; j < 16; ++j) q5[6 + j] = 0x21;
  float y[256];
  ASSERT_TRUE(DequantizeGguf(q5.data(), 6, 32, y).ok());
  EXPECT_EQ(y[0], 0.5f * ((1 | 16) - 16));   // element 0: low nibble 1 + bit 4 -> 17
  EXPECT_EQ(y[1], 0.5f * (1 - 16));
  EXPECT_EQ(y[16], 0.5f * (2 - 16));         // element 16: bit 16 of qh is clear
  EXPECT_EQ(y[17], 0.5f * ((2 | 16) - 16));  // element 17: bit 17 set
  // Q6_K: all codes 32 + 1 (ql nibble 1, qh bits 2 -> 0b10 << 4 = 32), scales 2, d = 0.25.
  std::vector<uint8_t> q6(210, 0);
  for (int i = 0; i < 128; ++i) q6[i] = 0x11;
  for (int i = 0; i < 64; ++i) q6[128 + i] = 0xAA;  // every 2-bit field = 2
  for (int i = 0; i < 16; ++i) q6[192 + i] = 2;
  const uint16_t qd = F32ToF16(0.25f);
  std::memcpy(q6.data() + 208, &qd, 2);
  ASSERT_TRUE(DequantizeGguf(q6.data(), 14, 256, y).ok());
  for (int i = 0; i < 256; ++i) ASSERT_EQ(y[i], 0.25f * 2 * 1) << i;
  // Q4_K: d = 1, dmin = 0.5, sub-block scales 3 and mins 1 for j < 4 (6-bit fields), codes 5.
  std::vector<uint8_t> q4k(144, 0);
  const uint16_t one = F32ToF16(1.0f), dm = F32ToF16(0.5f);
  std::memcpy(q4k.data(), &one, 2);
  std::memcpy(q4k.data() + 2, &dm, 2);
  for (int j = 0; j < 4; ++j) {
    q4k[4 + j] = 3;      // scale of sub-block j
    q4k[4 + j + 4] = 1;  // min of sub-block j
  }
  for (int i = 0; i < 128; ++i) q4k[16 + i] = 0x55;
  ASSERT_TRUE(DequantizeGguf(q4k.data(), 12, 256, y).ok());
  for (int i = 0; i < 128; ++i) ASSERT_EQ(y[i], 1.0f * 3 * 5 - 0.5f * 1) << i;  // sub-blocks 0..3
  for (int i = 128; i < 256; ++i) ASSERT_EQ(y[i], 0.0f) << i;  // sub-blocks 4..7: scale/min 0
}

TEST(Gguf, RefusesOtherTypesByName) {
  petrel::testing::TempDir tmp;
  std::vector<char> data(64, 0);
  const std::string p = tmp.path() + "/x.gguf";
  ASSERT_TRUE(WriteGguf(p, OrderedJson::object(), {{"t", 10 /* Q2_K */, {256}, data.data(), 64}}).ok());
  auto f = GgufFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("Q2_K"), std::string::npos) << f.error().message;
}

TEST(Gguf, SurvivesEveryTruncationAndByteFlip) {
  petrel::testing::TempDir tmp;
  std::vector<float> src;
  const std::vector<char> good = ReadAll(WriteSmall(tmp.path(), &src));
  ASSERT_TRUE(GgufFile::Parse(good.data(), good.size(), "good").ok());
  for (size_t n = 0; n < good.size(); n += (n < 1024 ? 1 : 97)) {
    std::vector<char> b(good.begin(), good.begin() + n);  // exact-size buffer (ASan sees overreads)
    (void)GgufFile::Parse(b.data(), b.size(), "trunc");
  }
  // Bit flips over the header and tensor-info region.
  for (size_t i = 0; i < std::min<size_t>(good.size(), 1200); ++i) {
    for (int bit : {0, 3, 7}) {
      std::vector<char> b = good;
      b[i] ^= (char)(1 << bit);
      auto r = GgufFile::Parse(b.data(), b.size(), "flip");
      if (r.ok()) {
        for (const auto& t : r->tensors())
          ASSERT_LE(static_cast<const char*>(t.data) + t.nbytes, b.data() + b.size());
      }
    }
  }
}

}  // namespace
}  // namespace petrel::formats
