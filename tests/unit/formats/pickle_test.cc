// The restricted unpickler and torch.save reader against real checkpoints written by torch.save
// (tests/fixtures/pickle, tools/gen_pickle_fixtures.py): every tensor's dtype, shape and values
// equal what torch saved (views of a shared storage, transposes, expands, 0-dim, empty, f16, bf16,
// ints, bools, nn.Module state dicts, pickle protocol 4, a sharded pair converted to safetensors).
// Hostile input is refused with a message naming what was refused: os.system / exec via GLOBAL +
// REDUCE, storage offsets and strides past the storage, forbidden opcodes, huge lengths, and
// every truncation / bit flip of a real archive (errors, never a crash).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/json_util.h"
#include "formats/pickle.h"
#include "formats/pickle_torch.h"
#include "formats/safetensors.h"
#include "temp_dir.h"

namespace petrel::formats {
namespace {

using petrel::testing::FailsWith;
using petrel::testing::ReadBytes;

std::string Pk(const std::string& f) { return std::string(PETREL_FIXTURES) + "/pickle/" + f; }

const char* TorchDTypeName(DType d) {
  switch (d) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kI64: return "int64";
    case DType::kBool: return "bool";
    default: return "?";
  }
}

std::vector<float> AsFloats(DType dt, const void* data, int64_t n) {
  std::vector<float> out(n);
  if (dt == DType::kF32 || dt == DType::kF16 || dt == DType::kBF16) {
    ConvertToF32(data, dt, out.data(), n);
  } else if (dt == DType::kI64) {
    for (int64_t i = 0; i < n; ++i) out[i] = (float)static_cast<const int64_t*>(data)[i];
  } else if (dt == DType::kBool) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<const uint8_t*>(data)[i] ? 1.0f : 0.0f;
  }
  return out;
}

void ExpectMatches(const std::string& file, const Json& want, DType dt, const Shape& shape, const void* data,
                   const std::string& key) {
  SCOPED_TRACE(file + " " + key);
  EXPECT_EQ(want["dtype"], TorchDTypeName(dt));
  std::vector<int64_t> dims(shape.dims.begin(), shape.dims.begin() + shape.rank);
  EXPECT_EQ(dims, want["shape"].get<std::vector<int64_t>>());
  EXPECT_EQ(AsFloats(dt, data, shape.NumElements()), want["values"].get<std::vector<float>>());
}

TEST(Pickle, ReadsEveryTorchSaveFixtureExactly) {
  auto expected = ReadJsonFile(Pk("expected.json"));
  ASSERT_TRUE(expected.ok()) << expected.error().ToString();
  ASSERT_EQ(expected->size(), 8u);
  for (auto it = expected->begin(); it != expected->end(); ++it) {
    auto ck = TorchCheckpoint::Open(Pk(it.key()));
    ASSERT_TRUE(ck.ok()) << ck.error().ToString();
    std::vector<std::string> names;
    for (const auto& t : ck->tensors()) {
      names.push_back(t->name);
      ASSERT_TRUE(it->contains(t->name)) << t->name;
      ExpectMatches(it.key(), (*it)[t->name], t->dtype, t->shape, t->data, t->name);
      EXPECT_EQ(t->nbytes, DTypeBytes(t->dtype, t->shape.NumElements()));
    }
    EXPECT_EQ(names.size(), it->size()) << it.key();
  }
}

TEST(Pickle, ViewsOfOneStorageAreGatheredOrAliased) {
  auto ck = TorchCheckpoint::Open(Pk("views.bin"));
  ASSERT_TRUE(ck.ok());
  std::map<std::string, const TorchTensor*> by;
  for (const auto& t : ck->tensors()) by[t->name] = t.get();
  EXPECT_TRUE(by["base"]->owned.empty());   // contiguous: aliases the archive
  EXPECT_TRUE(by["row"]->owned.empty());    // contiguous at an offset
  EXPECT_FALSE(by["t"]->owned.empty());     // transpose: gathered
  EXPECT_FALSE(by["expand"]->owned.empty());  // stride 0: gathered
  EXPECT_EQ(by["base"]->data, by["tied"]->data);
}

TEST(Pickle, ConvertsShardedCheckpointToSafetensors) {
  petrel::testing::TempDir tmp;
  auto written = ConvertTorchToSafetensors(std::string(PETREL_FIXTURES) + "/pickle", tmp.path());
  ASSERT_TRUE(written.ok()) << written.error().ToString();
  EXPECT_EQ(*written, (std::vector<std::string>{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                                "model.safetensors.index.json"}));
  auto store = TensorStore::OpenDirectory(tmp.path());
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  auto expected = ReadJsonFile(Pk("expected.json"));
  ASSERT_TRUE(expected.ok());
  int n = 0;
  for (const char* shard : {"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"}) {
    const Json& want = (*expected)[shard];
    for (auto it = want.begin(); it != want.end(); ++it, ++n) {
      const TensorInfo* t = store->Find(it.key());
      ASSERT_NE(t, nullptr) << it.key();
      ExpectMatches(shard, *it, t->dtype, t->shape, t->data, it.key());
    }
  }
  EXPECT_EQ(n, 3);
  EXPECT_EQ(store->all().size(), 3u);

  // One file in, one file out.
  petrel::testing::TempDir one;
  auto w1 = ConvertTorchToSafetensors(Pk("views.bin"), one.path());
  ASSERT_TRUE(w1.ok()) << w1.error().ToString();
  EXPECT_EQ(*w1, std::vector<std::string>{"model.safetensors"});
  auto f = SafetensorsFile::Open(one.File("model.safetensors"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->tensors().size(), 7u);
}

TEST(Pickle, RefusesHostileCheckpointsByName) {
  EXPECT_TRUE(FailsWith(TorchCheckpoint::Open(Pk("evil_os_system.bin")), ErrorCode::kUnsupported,
                        {"global `", "system`", "is not allowed"}));
  EXPECT_TRUE(FailsWith(TorchCheckpoint::Open(Pk("evil_exec.bin")), ErrorCode::kUnsupported,
                        {"global `", "exec` is not allowed"}));
  EXPECT_TRUE(FailsWith(TorchCheckpoint::Open(Pk("evil_offset.bin")), ErrorCode::kOutOfRange,
                        {"tensor `w`", "offset 100", "storage of 8"}));
  EXPECT_TRUE(FailsWith(TorchCheckpoint::Open(Pk("evil_stride.bin")), ErrorCode::kOutOfRange,
                        {"tensor `w`", "element 15", "storage of 8"}));
}

Result<pickle::Objects> Unpk(const std::string& s) { return pickle::Unpickle(s, "test"); }

TEST(Pickle, RefusesForbiddenOpcodesGlobalsAndBadLengths) {
  using std::string_literals::operator""s;
  // GLOBAL os.system + REDUCE (refused at the GLOBAL, before anything could be called).
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00ls" "\x85R."s), ErrorCode::kUnsupported,
                        {"global `os.system` is not allowed"}));
  // STACK_GLOBAL builtins.eval.
  EXPECT_TRUE(FailsWith(Unpk("\x80\x04\x8c\x08" "builtins" "\x8c\x04" "eval" "\x93."s), ErrorCode::kUnsupported,
                        {"builtins.eval"}));
  // REDUCE on an allowed-but-not-callable global (a storage class).
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02" "ctorch\nFloatStorage\n)R."s), ErrorCode::kUnsupported,
                        {"calling `torch.FloatStorage` is not allowed"}));
  // OrderedDict with arguments.
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R."s), ErrorCode::kUnsupported,
                        {"OrderedDict called with arguments"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02\x81."s), ErrorCode::kUnsupported, {"0x81", "NEWOBJ"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02(i os\nsystem\n."s), ErrorCode::kUnsupported, {"INST"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02\x82\x01."s), ErrorCode::kUnsupported, {"EXT1"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02\x8f."s), ErrorCode::kUnsupported, {"EMPTY_SET"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02S'x'\n."s), ErrorCode::kUnsupported, {"STRING"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x09."s), ErrorCode::kUnsupported, {"protocol 9"}));
  // Huge lengths: checked against the remaining input.
  EXPECT_TRUE(FailsWith(Unpk("\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x40x."s), ErrorCode::kInvalidFormat,
                        {"truncated"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f."s), ErrorCode::kInvalidFormat,
                        {"frame"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02X\xff\xff\xff\xff."s), ErrorCode::kInvalidFormat, {"truncated"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."s), ErrorCode::kUnsupported,
                        {"9 bytes"}));
  // Memo and stack misuse.
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02j\x05\x00\x00\x00."s), ErrorCode::kInvalidFormat, {"memo index 5"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02."s), ErrorCode::kInvalidFormat, {"stack underflow"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02}K\x01s."s), ErrorCode::kInvalidFormat, {"stack underflow"}));
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02K\x01K\x02" "a."s), ErrorCode::kInvalidFormat, {"APPEND to a int"}));
  EXPECT_TRUE(FailsWith(Unpk(""), ErrorCode::kInvalidFormat, {"truncated"}));
  // Persistent ids other than torch's storage tuple.
  EXPECT_TRUE(FailsWith(Unpk("\x80\x02X\x01\x00\x00\x00xQ."s), ErrorCode::kUnsupported, {"persistent id"}));
}

TEST(Pickle, DeepAndCyclicStructuresDoNotCrash) {
  // 200k nested lists: push 200k empty lists, then APPEND each into the one below it.
  std::string s = "\x80\x04";
  s += std::string(200000, ']');
  s += std::string(199999, 'a');
  s += ".";
  auto deep = Unpk(s);
  ASSERT_TRUE(deep.ok()) << deep.error().ToString();
  EXPECT_EQ(deep->root()->items.size(), 1u);
  // A list that contains itself (through the memo).
  auto r = Unpk(std::string("\x80\x02]q\x00h\x00" "a.", 9));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->root()->items.size(), 1u);
  EXPECT_EQ(r->root()->items[0], r->root());
}

TEST(Pickle, StorageLargerThanItsFileIsRefused) {
  // views.bin's storage id says 24 elements ("cpu", BINPUT, BININT1 24); claim 255 instead.
  std::string b = ReadBytes(Pk("views.bin"));
  const size_t at = b.find(std::string("cpuq\x06K\x18", 7));
  ASSERT_NE(at, std::string::npos);
  b[at + 6] = '\xff';
  EXPECT_TRUE(FailsWith(TorchCheckpoint::Parse(b.data(), b.size(), "big.bin"), ErrorCode::kInvalidFormat,
                        {"claims 255 elements", "96 bytes"}));
}

TEST(Pickle, LegacyAndNonZipInputsAreRefusedPrecisely) {
  const std::string legacy = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
  EXPECT_TRUE(FailsWith(TorchCheckpoint::Parse(legacy.data(), legacy.size(), "old.bin"), ErrorCode::kUnsupported,
                        {"legacy"}));
  const std::string junk = "hello";
  EXPECT_TRUE(FailsWith(TorchCheckpoint::Parse(junk.data(), junk.size(), "j.bin"), ErrorCode::kInvalidFormat,
                        {"zip signature"}));
}

TEST(Pickle, SurvivesEveryTruncationAndByteFlip) {
  const std::string good = ReadBytes(Pk("views.bin"));
  ASSERT_TRUE(TorchCheckpoint::Parse(good.data(), good.size(), "good").ok());
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<char> b(good.begin(), good.begin() + (std::ptrdiff_t)n);
    auto r = TorchCheckpoint::Parse(b.data(), b.size(), "trunc");
    EXPECT_FALSE(r.ok()) << n;
  }
  int ok = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit : {0, 3, 6}) {
      std::vector<char> b(good.begin(), good.end());
      b[i] ^= (char)(1 << bit);
      auto r = TorchCheckpoint::Parse(b.data(), b.size(), "flip");
      if (!r.ok()) continue;
      ++ok;
      for (const auto& t : r->tensors()) {
        if (t->owned.empty() && t->nbytes > 0) {
          ASSERT_GE(static_cast<const char*>(t->data), b.data());
          ASSERT_LE(static_cast<const char*>(t->data) + t->nbytes, b.data() + b.size());
        }
      }
    }
  }
  EXPECT_GT(ok, 0);  // flips in tensor data leave a valid archive
}

}  // namespace
}  // namespace petrel::formats
