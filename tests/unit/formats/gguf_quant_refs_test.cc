// DequantizeGguf() against llama.cpp's published block definitions: gguf_quant_refs.json holds raw
// blocks (random bytes with sane fp16 scales, and gguf-py's own quantizations of random floats)
// with the float32 values llama.cpp's gguf-py dequantizer gives for them
// (tools/gen_gguf_quant_refs.py). Every value must match bit for bit: both sides compute
// fp16 scale -> f32, then the same one or two f32 multiply/subtracts per element.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/json_util.h"
#include "formats/gguf.h"

namespace petrel::formats {
namespace {

std::vector<uint8_t> FromHex(const std::string& h) {
  std::vector<uint8_t> out(h.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = (uint8_t)std::stoi(h.substr(2 * i, 2), nullptr, 16);
  return out;
}

TEST(GgufQuantRefs, DequantizeMatchesGgufPyBitForBit) {
  std::ifstream in(std::string(PETREL_SOURCE_DIR) + "/tests/unit/formats/gguf_quant_refs.json");
  ASSERT_TRUE(in) << "missing gguf_quant_refs.json";
  std::stringstream ss;
  ss << in.rdbuf();
  auto refs = ParseJson(ss.str(), "gguf_quant_refs.json");
  ASSERT_TRUE(refs.ok());
  std::vector<std::string> seen;
  for (const Json& c : (*refs)["cases"]) {
    const std::string name = c["type"].get<std::string>();
    SCOPED_TRACE(name);
    seen.push_back(name);
    const uint32_t type = c["ggml_type"].get<uint32_t>();
    EXPECT_EQ(name, GgmlTypeName(type));
    const std::vector<uint8_t> raw = FromHex(c["raw_hex"].get<std::string>());
    const std::vector<uint8_t> vb = FromHex(c["values_f32le_hex"].get<std::string>());
    std::vector<float> want(vb.size() / 4);
    std::memcpy(want.data(), vb.data(), vb.size());
    std::vector<float> got(want.size(), -12345.0f);
    ASSERT_TRUE(DequantizeGguf(raw.data(), type, (int64_t)got.size(), got.data()).ok());
    int bad = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      uint32_t a, b;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &want[i], 4);
      if (a != b && !(got[i] == 0.0f && want[i] == 0.0f) && bad++ < 5) {
        ADD_FAILURE() << name << " element " << i << " (block " << i / (want.size() / c["blocks"].get<size_t>())
                      << "): petrel " << got[i] << " gguf-py " << want[i];
      }
    }
    EXPECT_EQ(bad, 0) << name << ": " << bad << " of " << want.size() << " values differ";
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"}));
}

}  // namespace
}  // namespace petrel::formats
