// SafeTensors reader: round trip through WriteSafetensors, and one test per kind of malformed file
// (built by byte surgery on a valid file) that expects the precise error: code, file and tensor.
#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/json_util.h"
#include "temp_dir.h"

namespace petrel::formats {
namespace {

using petrel::testing::ReadBytes;
using petrel::testing::TempDir;
using petrel::testing::WriteBytes;

// Checks that `r` failed with `code` and that its message contains every one of `parts`.
using petrel::testing::FailsWith;

// The base file's tensors (sorted by name, as written): a F32 [2, 3] at [0, 24), b BF16 [4] at
// [24, 32), c F16 [2, 2] at [32, 40). 40 data bytes.
struct BaseTensors {
  float a[6] = {0, 1, 2, 3, 4, 5};
  uint16_t b[4] = {0x3f80, 0x4000, 0x4040, 0xbf80};  // bf16 1, 2, 3, -1
  uint16_t c[4] = {0x3c00, 0x4000, 0x4200, 0xbc00};  // f16 1, 2, 3, -1
  std::vector<TensorToWrite> List() const {
    return {
        {"c", DType::kF16, {2, 2}, c}, {"a", DType::kF32, {2, 3}, a}, {"b", DType::kBF16, {4}, b}};
  }
};

std::string WriteBase(const std::string& path) {
  BaseTensors t;
  auto st = WriteSafetensors(path, t.List(), {{"format", "pt"}});
  EXPECT_TRUE(st.ok()) << st.error().ToString();
  return path;
}

// A safetensors image split into its header text and data section, and joined back.
struct Image {
  std::string header;
  std::string data;
};
Image Split(const std::string& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return Image{bytes.substr(8, n), bytes.substr(8 + n)};
}
std::string Join(const std::string& header, const std::string& data) {
  const uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

// Rewrites the header of the file at `path` through `edit` (data section unchanged).
template <typename Fn>
void EditHeader(const std::string& path, Fn&& edit) {
  Image img = Split(ReadBytes(path));
  auto h = ParseOrderedJson(img.header, "header");
  ASSERT_TRUE(h.ok());
  edit(*h);
  WriteBytes(path, Join(DumpJson(*h), img.data));
}

TEST(Safetensors, RoundTripKeepsNamesShapesDtypesAndBytes) {
  TempDir dir;
  BaseTensors t;
  const std::string path = WriteBase(dir.File("x.safetensors"));
  // Data starts 8-byte aligned, as the Python library writes it.
  EXPECT_EQ((8 + Split(ReadBytes(path)).header.size()) % 8, 0u);
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_EQ(f->metadata().at("format"), "pt");
  ASSERT_EQ(f->tensors().size(), 3u);
  for (const auto& want : t.List()) {
    const TensorInfo* got = nullptr;
    for (const auto& info : f->tensors())
      if (info.name == want.name) got = &info;
    ASSERT_NE(got, nullptr) << want.name;
    EXPECT_EQ(got->dtype, want.dtype) << want.name;
    EXPECT_EQ(got->shape, want.shape) << want.name;
    EXPECT_EQ(got->file, path);
    const size_t nbytes = (size_t)want.shape.NumElements() * DTypeSize(want.dtype);
    ASSERT_EQ(got->nbytes, nbytes) << want.name;
    EXPECT_EQ(std::memcmp(got->data, want.data, nbytes), 0) << want.name;
  }
}

TEST(Safetensors, RoundTripEmptyAndScalarTensors) {
  TempDir dir;
  const float scalar = 7.5f;
  std::vector<TensorToWrite> list = {{"empty", DType::kF32, {0, 4}, nullptr},
                                     {"scalar", DType::kF32, Shape{}, &scalar}};
  ASSERT_TRUE(WriteSafetensors(dir.File("e.safetensors"), list).ok());
  auto f = SafetensorsFile::Open(dir.File("e.safetensors"));
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].nbytes, 0u);
  EXPECT_EQ(f->tensors()[1].shape.rank, 0);
  EXPECT_EQ(*static_cast<const float*>(f->tensors()[1].data), 7.5f);
}

TEST(Safetensors, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(dir.File("nope.safetensors")), ErrorCode::kNotFound,
                        {dir.File("nope.safetensors")}));
}

TEST(Safetensors, FileShorterThan8Bytes) {
  TempDir dir;
  WriteBytes(dir.File("s.safetensors"), "abcde");
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(dir.File("s.safetensors")), ErrorCode::kInvalidFormat,
                        {dir.File("s.safetensors"), "file is 5 bytes, too small"}));
  WriteBytes(dir.File("empty.safetensors"), "");
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(dir.File("empty.safetensors")),
                        ErrorCode::kInvalidFormat, {"file is 0 bytes"}));
}

TEST(Safetensors, HeaderLengthBeyondFile) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("h.safetensors"));
  std::string bytes = ReadBytes(path);
  const uint64_t lie = bytes.size();  // 8 + lie > file size
  std::memcpy(bytes.data(), &lie, 8);
  WriteBytes(path, bytes);
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "header length " + std::to_string(lie), "exceeds file size"}));
}

TEST(Safetensors, HeaderLengthOverLimitIsRefusedBeforeReading) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("h.safetensors"));
  std::string bytes = ReadBytes(path);
  const uint64_t lie = ~0ull;  // would wrap any unchecked 8 + n
  std::memcpy(bytes.data(), &lie, 8);
  WriteBytes(path, bytes);
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "exceeds the 100 MiB limit"}));
}

TEST(Safetensors, TruncatedFileNamesTheTensorPastTheEnd) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("t.safetensors"));
  std::string bytes = ReadBytes(path);
  WriteBytes(path, bytes.substr(0, bytes.size() - 4));  // c's last 4 bytes are gone
  EXPECT_TRUE(
      FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                {path, "tensor `c`", "data_offsets end 40 is beyond the data section (36 bytes)"}));
  // Truncated inside the header.
  WriteBytes(path, bytes.substr(0, 20));
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "exceeds file size 20"}));
}

TEST(Safetensors, HeaderNotJson) {
  TempDir dir;
  const std::string path = dir.File("j.safetensors");
  WriteBytes(path, Join("{\"a\": {\"dtype\": \"F32\", ", std::string(8, '\0')));
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "header", "invalid JSON"}));
}

TEST(Safetensors, HeaderNotAnObject) {
  TempDir dir;
  const std::string path = dir.File("o.safetensors");
  WriteBytes(path, Join("[1, 2, 3]", ""));
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "header is not a JSON object"}));
  WriteBytes(path, Join("{\"a\": 3}", ""));
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "tensor `a`: entry is not an object"}));
}

TEST(Safetensors, MetadataValuesMustBeStrings) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("m.safetensors"));
  EditHeader(path, [](OrderedJson& h) { h["__metadata__"]["step"] = 3; });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "__metadata__[\"step\"] is not a string"}));
}

// Each required field removed in turn names the field and the tensor.
TEST(Safetensors, MissingDtypeShapeOrOffsets) {
  TempDir dir;
  const std::string path = dir.File("f.safetensors");
  const std::pair<const char*, const char*> cases[] = {
      {"dtype", "missing or non-string dtype"},
      {"shape", "missing or non-array shape"},
      {"data_offsets", "data_offsets must be [begin, end]"},
  };
  for (const auto& [field, message] : cases) {
    WriteBase(path);
    EditHeader(path, [&](OrderedJson& h) { h["b"].erase(field); });
    EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                          {path, "tensor `b`", message}))
        << field;
  }
  WriteBase(path);
  EditHeader(path, [](OrderedJson& h) { h["b"]["data_offsets"] = {24}; });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {"tensor `b`", "data_offsets must be [begin, end]"}));
  WriteBase(path);
  EditHeader(path, [](OrderedJson& h) { h["b"]["dtype"] = 16; });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {"tensor `b`", "missing or non-string dtype"}));
}

// An unknown (or known but unimplemented) dtype is kUnsupported, naming the dtype and tensor.
TEST(Safetensors, UnknownDtype) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("d.safetensors"));
  EditHeader(path, [](OrderedJson& h) { h["b"]["dtype"] = "Q9_K"; });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kUnsupported,
                        {path, "tensor `b`", "dtype \"Q9_K\""}));
  WriteBase(path);
  EditHeader(path, [](OrderedJson& h) { h["b"]["dtype"] = "F8_E4M3"; });  // 1 byte x 8 = same size
  EXPECT_TRUE(
      FailsWith(SafetensorsFile::Open(path), ErrorCode::kUnsupported, {"tensor `b`", "F8_E4M3"}));
}

TEST(Safetensors, NegativeOrFractionalShapeEntries) {
  TempDir dir;
  const std::string path = dir.File("s.safetensors");
  for (const OrderedJson& shape : {OrderedJson::parse("[-4]"), OrderedJson::parse("[4.0]"),
                                   OrderedJson::parse("[2.5, 2]"), OrderedJson::parse("[\"4\"]")}) {
    WriteBase(path);
    EditHeader(path, [&](OrderedJson& h) { h["b"]["shape"] = shape; });
    EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                          {path, "tensor `b`", "shape entries must be non-negative integers"}))
        << shape.dump();
  }
}

TEST(Safetensors, HugeShapeDoesNotOverflow) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("s.safetensors"));
  // 2^32 x 2^32 elements would wrap a 64-bit byte count to 0 after x 2 bytes... refused first.
  EditHeader(path, [](OrderedJson& h) { h["b"]["shape"] = {1ull << 32, 1ull << 32}; });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {"tensor `b`", "shape is too large"}));
}

TEST(Safetensors, RankAboveFourIsUnsupported) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("r.safetensors"));
  EditHeader(path, [](OrderedJson& h) { h["b"]["shape"] = {1, 1, 1, 2, 2}; });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kUnsupported,
                        {path, "tensor `b`", "rank 5"}));
}

TEST(Safetensors, OffsetsBeyondData) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("o.safetensors"));
  EditHeader(path, [](OrderedJson& h) { h["b"]["data_offsets"] = {36, 44}; });
  EXPECT_TRUE(
      FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                {path, "tensor `b`", "data_offsets end 44 is beyond the data section (40 bytes)"}));
  WriteBase(path);
  EditHeader(path, [](OrderedJson& h) { h["b"]["data_offsets"] = {-8, 0}; });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {"tensor `b`", "data_offsets must be non-negative integers"}));
}

TEST(Safetensors, BeginAfterEnd) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("o.safetensors"));
  EditHeader(path, [](OrderedJson& h) { h["b"]["data_offsets"] = {32, 24}; });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "tensor `b`", "data_offsets begin 32 > end 24"}));
}

TEST(Safetensors, ByteSizeDisagreesWithShapeTimesDtype) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("b.safetensors"));
  EditHeader(path, [](OrderedJson& h) { h["a"]["shape"] = {2, 2}; });  // 16 bytes, range has 24
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "tensor `a`", "byte size 24 != [2, 2] x F32 = 16"}));
  WriteBase(path);
  EditHeader(path, [](OrderedJson& h) { h["b"]["dtype"] = "F32"; });  // 16 bytes, range has 8
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {"tensor `b`", "byte size 8 != [4] x F32 = 16"}));
}

TEST(Safetensors, OverlappingTensors) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("o.safetensors"));
  EditHeader(path, [](OrderedJson& h) { h["b"]["data_offsets"] = {16, 24}; });  // inside a
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "tensors `a` and `b` overlap"}));
  // Two tensors on the very same bytes.
  WriteBase(path);
  EditHeader(path, [](OrderedJson& h) { h["c"]["data_offsets"] = {24, 32}; });
  EXPECT_TRUE(
      FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat, {"tensors `", "overlap"}));
}

// An empty tensor between two overlapping ones must not hide the overlap (ranges sorted by begin:
// a [0, 24), e [8, 8), c [16, 24)).
TEST(Safetensors, OverlapBehindAnEmptyTensor) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("o.safetensors"));
  EditHeader(path, [](OrderedJson& h) {
    h["e"] = OrderedJson{{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {8, 8}}};
    h["c"]["data_offsets"] = {16, 24};
  });
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "tensors `a` and `c` overlap"}));
}

TEST(Safetensors, EmptyTensorsMayShareAnOffset) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("e.safetensors"));
  EditHeader(path, [](OrderedJson& h) {
    h["e1"] = OrderedJson{{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {24, 24}}};
    h["e2"] = OrderedJson{{"dtype", "BF16"}, {"shape", {3, 0}}, {"data_offsets", {24, 24}}};
  });
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_EQ(f->tensors().size(), 5u);
}

TEST(Safetensors, DuplicateTensorNames) {
  TempDir dir;
  const std::string path = WriteBase(dir.File("dup.safetensors"));
  // JSON objects cannot hold a duplicate key, so rename "b" to "a" in the raw header text.
  Image img = Split(ReadBytes(path));
  const size_t at = img.header.find("\"b\":");
  ASSERT_NE(at, std::string::npos);
  img.header[at + 1] = 'a';
  WriteBytes(path, Join(img.header, img.data));
  EXPECT_TRUE(FailsWith(SafetensorsFile::Open(path), ErrorCode::kInvalidFormat,
                        {path, "tensor `a` appears twice in the header"}));
}

// ParseHeader is the fuzzer's entry point: it must give errors, not crashes, on arbitrary bytes.
TEST(Safetensors, ParseHeaderSurvivesEveryTruncationAndByteFlip) {
  TempDir dir;
  const std::string bytes = ReadBytes(WriteBase(dir.File("z.safetensors")));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = SafetensorsFile::ParseHeader(bytes.data(), n, "cut", nullptr);
    EXPECT_FALSE(r.ok()) << n;  // every proper prefix is malformed
  }
  for (size_t i = 8; i < bytes.size() - 40; ++i) {  // every header byte
    std::string b = bytes;
    b[i] ^= 0x55;
    (void)SafetensorsFile::ParseHeader(b.data(), b.size(), "flip", nullptr);
  }
}

// ---- Sharded directories (model.safetensors.index.json) ----

// Writes shard 1 {a, b} and shard 2 {c} and an index listing them (optionally edited).
struct ShardedDir {
  TempDir dir;
  std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  Json index;
  ShardedDir() {
    BaseTensors t;
    auto all = t.List();  // c, a, b
    EXPECT_TRUE(WriteSafetensors(dir.File(s1), {all[1], all[2]}).ok());
    EXPECT_TRUE(WriteSafetensors(dir.File(s2), {all[0]}).ok());
    index = {{"metadata", {{"total_size", 40}}}, {"weight_map", {{"a", s1}, {"b", s1}, {"c", s2}}}};
  }
  void WriteIndex() { WriteBytes(dir.File("model.safetensors.index.json"), index.dump(2)); }
  std::string IndexPath() const { return dir.File("model.safetensors.index.json"); }
};

TEST(TensorStore, OpensShardedDirectory) {
  ShardedDir d;
  d.WriteIndex();
  auto s = TensorStore::OpenDirectory(d.dir.path());
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(s->all().size(), 3u);
  ASSERT_NE(s->Find("c"), nullptr);
  EXPECT_EQ(s->Find("c")->file, d.dir.File(d.s2));
  EXPECT_EQ(s->Find("a")->file, d.dir.File(d.s1));
  EXPECT_EQ(s->Find("zz"), nullptr);
  EXPECT_EQ(s->TotalBytes(), 40);
}

TEST(TensorStore, OpensSingleFileDirectory) {
  TempDir dir;
  WriteBase(dir.File("model.safetensors"));
  auto s = TensorStore::OpenDirectory(dir.path());
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(s->all().size(), 3u);
}

TEST(TensorStore, EmptyDirectoryIsNotFound) {
  TempDir dir;
  EXPECT_TRUE(FailsWith(TensorStore::OpenDirectory(dir.path()), ErrorCode::kNotFound,
                        {dir.path(), "no model.safetensors or model.safetensors.index.json"}));
}

TEST(TensorStore, IndexPointsToMissingShard) {
  ShardedDir d;
  d.index["weight_map"]["c"] = "model-00003-of-00002.safetensors";
  d.WriteIndex();
  EXPECT_TRUE(FailsWith(TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kNotFound,
                        {d.dir.File("model-00003-of-00002.safetensors"), "no such file"}));
}

TEST(TensorStore, TensorInWrongShard) {
  ShardedDir d;
  d.index["weight_map"]["c"] = d.s1;  // c is in shard 2
  d.WriteIndex();
  EXPECT_TRUE(
      FailsWith(TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kInvalidFormat,
                {d.IndexPath(), "tensor `c`", "listed but not found in " + d.dir.File(d.s1)}));
  // Both shards are opened, so the misplacement is reported with both file names.
  d.index["weight_map"]["a"] = d.s2;
  d.index["weight_map"]["c"] = d.s2;
  d.WriteIndex();
  EXPECT_TRUE(FailsWith(
      TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kInvalidFormat,
      {d.IndexPath(), "tensor `a` is in " + d.dir.File(d.s1), "index says " + d.dir.File(d.s2)}));
}

TEST(TensorStore, ShardNameMustBePlain) {
  for (const std::string bad :
       {"../model.safetensors", "sub/model.safetensors", "/etc/passwd", ".."}) {
    ShardedDir d;
    d.index["weight_map"]["c"] = bad;
    d.WriteIndex();
    EXPECT_TRUE(FailsWith(TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kInvalidFormat,
                          {d.IndexPath(), "shard name \"" + bad + "\" must be a plain file name"}));
  }
}

TEST(TensorStore, TensorInTwoShards) {
  ShardedDir d;
  BaseTensors t;
  ASSERT_TRUE(WriteSafetensors(d.dir.File(d.s2), {t.List()[0], t.List()[1]}).ok());  // c and a
  d.WriteIndex();
  EXPECT_TRUE(FailsWith(TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kInvalidFormat,
                        {"tensor `a` appears in both " + d.dir.File(d.s1), d.dir.File(d.s2)}));
}

TEST(TensorStore, IndexWithoutWeightMap) {
  ShardedDir d;
  d.index = {{"metadata", {{"total_size", 40}}}};
  d.WriteIndex();
  EXPECT_TRUE(FailsWith(TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kInvalidFormat,
                        {d.IndexPath(), "missing object \"weight_map\""}));
  d.index = {{"weight_map", {{"a", 3}}}};
  d.WriteIndex();
  EXPECT_TRUE(FailsWith(TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kInvalidFormat,
                        {d.IndexPath(), "weight_map[\"a\"] is not a string"}));
  WriteBytes(d.IndexPath(), "{\"weight_map\": ");
  EXPECT_TRUE(FailsWith(TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kInvalidFormat,
                        {d.IndexPath(), "invalid JSON"}));
}

// A malformed shard's error names that shard's path (not just the directory).
TEST(TensorStore, MalformedShardNamesTheShard) {
  ShardedDir d;
  d.WriteIndex();
  std::string bytes = ReadBytes(d.dir.File(d.s2));
  WriteBytes(d.dir.File(d.s2), bytes.substr(0, bytes.size() - 1));
  EXPECT_TRUE(FailsWith(TensorStore::OpenDirectory(d.dir.path()), ErrorCode::kInvalidFormat,
                        {d.dir.File(d.s2), "tensor `c`", "beyond the data section"}));
}

}  // namespace
}  // namespace petrel::formats
