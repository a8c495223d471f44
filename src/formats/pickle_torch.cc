#include "formats/pickle_torch.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/json_util.h"
#include "formats/pickle.h"
#include "formats/safetensors.h"

namespace petrel::formats {

namespace {

// ----- zip (PKWARE APPNOTE 4.3.7, 4.3.12, 4.3.16; zip64 4.3.14-15, extra field 0x0001) -----

struct ZipEntry {
  uint64_t data_offset = 0;
  uint64_t size = 0;
};

uint16_t U16(const char* p) { return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8)); }
uint32_t U32(const char* p) { return U16(p) | (static_cast<uint32_t>(U16(p + 2)) << 16); }
uint64_t U64(const char* p) { return U32(p) | (static_cast<uint64_t>(U32(p + 4)) << 32); }

Result<std::map<std::string, ZipEntry>> ReadZip(const char* b, size_t size, const std::string& name) {
  auto bad = [&](auto&&... a) { return InvalidFormat(name, ": zip: ", a...); };
  // End of central directory: 22 bytes + a comment of up to 65535 bytes at the end.
  if (size < 22) return bad("too small for a zip archive");
  size_t eocd = std::string::npos;
  for (size_t p = size - 22 + 1; p-- > 0 && size - p <= 22 + 65535;) {
    if (U32(b + p) == 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd == std::string::npos) return bad("no end-of-central-directory record (truncated file?)");
  uint64_t n_entries = U16(b + eocd + 10);
  uint64_t cd_size = U32(b + eocd + 12);
  uint64_t cd_off = U32(b + eocd + 16);
  if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
    // zip64: locator (20 bytes) right before the EOCD points to the zip64 EOCD record.
    if (eocd < 20 || U32(b + eocd - 20) != 0x07064b50) return bad("missing zip64 locator");
    const uint64_t rec = U64(b + eocd - 20 + 8);
    if (rec > size - 56 || U32(b + rec) != 0x06064b50) return bad("bad zip64 end record offset ", rec);
    n_entries = U64(b + rec + 32);
    cd_size = U64(b + rec + 40);
    cd_off = U64(b + rec + 48);
  }
  if (cd_off > size || cd_size > size - cd_off) return bad("central directory outside the file");
  if (n_entries > cd_size / 46) return bad("entry count ", n_entries, " does not fit the central directory");
  std::map<std::string, ZipEntry> out;
  uint64_t p = cd_off;
  const uint64_t end = cd_off + cd_size;
  for (uint64_t i = 0; i < n_entries; ++i) {
    if (end - p < 46 || U32(b + p) != 0x02014b50) return bad("bad central directory entry ", i);
    const uint16_t method = U16(b + p + 10);
    uint64_t csize = U32(b + p + 20), usize = U32(b + p + 24);
    const uint16_t n_name = U16(b + p + 28), n_extra = U16(b + p + 30), n_comment = U16(b + p + 32);
    uint64_t local = U32(b + p + 42);
    if (end - p - 46 < uint64_t{n_name} + n_extra + n_comment) return bad("central directory entry ", i, " overruns");
    std::string fname(b + p + 46, n_name);
    // zip64 extra field: the 64-bit values of whichever of usize, csize, offset are 0xFFFFFFFF.
    for (uint64_t e = p + 46 + n_name; e + 4 <= p + 46 + n_name + n_extra;) {
      const uint16_t id = U16(b + e), len = U16(b + e + 2);
      if (e + 4 + len > p + 46 + n_name + n_extra) return bad("extra field of `", fname, "` overruns");
      if (id == 0x0001) {
        uint64_t q = e + 4;
        auto next = [&](uint64_t* v) -> Status {
          if (*v != 0xFFFFFFFFu) return OkStatus();
          if (q + 8 > e + 4 + len) return bad("short zip64 field for `", fname, "`");
          *v = U64(b + q);
          q += 8;
          return OkStatus();
        };
        PETREL_TRY(next(&usize));
        PETREL_TRY(next(&csize));
        PETREL_TRY(next(&local));
      }
      e += 4 + len;
    }
    p += 46 + uint64_t{n_name} + n_extra + n_comment;
    if (method != 0) {
      return Unsupported(name, ": zip entry `", fname, "` is compressed (method ", method,
                         "); torch.save writes stored entries only");
    }
    if (csize != usize) return bad("stored entry `", fname, "` has different sizes");
    if (local > size || size - local < 30 || U32(b + local) != 0x04034b50) {
      return bad("local header of `", fname, "` at ", local, " is outside the file or corrupt");
    }
    const uint64_t data = local + 30 + U16(b + local + 26) + U16(b + local + 28);
    if (data > size || usize > size - data) return bad("data of `", fname, "` extends past the end of the file");
    out[fname] = ZipEntry{data, usize};
  }
  return out;
}

// torch.<Type>Storage -> dtype.
Result<DType> StorageDType(const std::string& cls, const std::string& what) {
  static const std::pair<const char*, DType> kMap[] = {
      {"FloatStorage", DType::kF32}, {"HalfStorage", DType::kF16}, {"BFloat16Storage", DType::kBF16},
      {"LongStorage", DType::kI64},  {"IntStorage", DType::kI32},  {"ShortStorage", DType::kI16},
      {"CharStorage", DType::kI8},   {"ByteStorage", DType::kU8},  {"BoolStorage", DType::kBool}};
  for (const auto& [n, d] : kMap)
    if (cls == n) return d;
  return Unsupported(what, ": torch.", cls, " tensors are not supported (F32, F16, BF16 and integer types)");
}

// Checks a tensor against its storage and produces a contiguous copy or view.
Status MakeTensor(const pickle::Value& t, const std::string& key, const char* base,
                  const std::map<std::string, ZipEntry>& zip, const std::string& prefix,
                  const std::string& name, TorchTensor* out) {
  const std::string what = name + ": tensor `" + key + "`";
  const pickle::Value& st = *t.storage;
  PETREL_TRY(out->dtype, StorageDType(st.s, what));
  const size_t es = DTypeSize(out->dtype);
  auto it = zip.find(prefix + "/data/" + st.storage_key);
  if (it == zip.end()) return InvalidFormat(what, ": storage file `", prefix, "/data/", st.storage_key, "` is missing");
  if (st.storage_numel < 0 || static_cast<uint64_t>(st.storage_numel) > it->second.size / es) {
    return InvalidFormat(what, ": storage `", st.storage_key, "` claims ", st.storage_numel, " elements but its file has ",
                         it->second.size, " bytes");
  }
  const int64_t numel_storage = st.storage_numel;
  if (t.size.size() > static_cast<size_t>(Shape::kMaxRank)) return Unsupported(what, ": rank ", t.size.size());
  int64_t n = 1, last = t.offset;
  if (t.offset < 0) return InvalidFormat(what, ": negative storage offset ", t.offset);
  for (size_t d = 0; d < t.size.size(); ++d) {
    if (t.size[d] < 0 || t.stride[d] < 0) return InvalidFormat(what, ": negative size or stride");
    if (t.size[d] > 0 && n > (int64_t{1} << 48) / t.size[d]) return InvalidFormat(what, ": too many elements");
    n *= t.size[d];
  }
  if (n > 0) {
    for (size_t d = 0; d < t.size.size(); ++d) {
      if (t.stride[d] > (int64_t{1} << 48) || t.size[d] > (int64_t{1} << 48)) return InvalidFormat(what, ": stride too large");
      last += (t.size[d] - 1) * t.stride[d];
      if (last > (int64_t{1} << 60)) return InvalidFormat(what, ": stride too large");
    }
    if (last >= numel_storage) {
      return OutOfRange(what, ": offset ", t.offset, " with size/stride reaches element ", last,
                        " of a storage of ", numel_storage);
    }
  }
  PETREL_TRY(out->shape, Shape::FromVector(t.size));
  out->name = key;
  out->nbytes = static_cast<size_t>(n) * es;
  const char* src = base + it->second.data_offset;
  // Contiguous: strides are the row-major ones (dims of size 1 may carry any stride).
  bool contiguous = true;
  int64_t expect = 1;
  for (size_t d = t.size.size(); d-- > 0;) {
    if (t.size[d] != 1 && t.stride[d] != expect) contiguous = false;
    expect *= t.size[d];
  }
  if (contiguous || n == 0) {
    out->data = src + static_cast<size_t>(t.offset) * es;
    return OkStatus();
  }
  // Gather a strided view (row-major walk over the index space).
  out->owned.resize(out->nbytes);
  const size_t rank = t.size.size();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t e = t.offset;
    for (size_t d = 0; d < rank; ++d) e += idx[d] * t.stride[d];
    std::memcpy(out->owned.data() + static_cast<size_t>(i) * es, src + static_cast<size_t>(e) * es, es);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < t.size[d]) break;
      idx[d] = 0;
    }
  }
  out->data = out->owned.data();
  return OkStatus();
}

}  // namespace

Result<TorchCheckpoint> TorchCheckpoint::Parse(const char* bytes, size_t size, const std::string& name) {
  if (size >= 2 && static_cast<uint8_t>(bytes[0]) == 0x80 && size >= 4 && std::memcmp(bytes, "PK", 2) != 0) {
    return Unsupported(name, ": legacy (pre-1.6) torch.save format; re-save it with a recent torch "
                             "(torch.save(torch.load(f), f)) to get the zip format");
  }
  if (size < 4 || std::memcmp(bytes, "PK\x03\x04", 4) != 0) {
    return InvalidFormat(name, ": not a torch.save zip archive (no zip signature)");
  }
  PETREL_TRY(auto zip, ReadZip(bytes, size, name));
  std::string prefix;
  for (const auto& [fname, e] : zip) {
    if (fname.ends_with("/data.pkl") && fname.find('/') == fname.size() - 9) {
      prefix = fname.substr(0, fname.size() - 9);
      break;
    }
  }
  if (prefix.empty()) return InvalidFormat(name, ": no <archive>/data.pkl in the zip");
  if (auto bo = zip.find(prefix + "/byteorder"); bo != zip.end()) {
    std::string order(bytes + bo->second.data_offset, bo->second.size);
    if (order != "little") return Unsupported(name, ": byte order \"", order, "\" (little-endian only)");
  }
  const ZipEntry& pkl = zip.at(prefix + "/data.pkl");
  PETREL_TRY(pickle::Objects objs,
             pickle::Unpickle(std::string_view(bytes + pkl.data_offset, pkl.size), name + ": data.pkl"));
  const pickle::Value* root = objs.root();
  if (root->kind != pickle::Kind::kDict) {
    return Unsupported(name, ": data.pkl holds a ", pickle::KindName(root->kind), ", not a state dict");
  }
  TorchCheckpoint ck;
  std::map<std::string, bool> seen;
  for (const auto& [k, v] : root->dict) {
    if (k->kind != pickle::Kind::kString) return InvalidFormat(name, ": state dict key is a ", pickle::KindName(k->kind));
    if (v->kind != pickle::Kind::kTensor) {
      return Unsupported(name, ": state dict entry `", k->s, "` is a ", pickle::KindName(v->kind), ", not a tensor");
    }
    if (seen[k->s]) return InvalidFormat(name, ": duplicate key `", k->s, "`");
    seen[k->s] = true;
    auto t = std::make_unique<TorchTensor>();
    PETREL_TRY(MakeTensor(*v, k->s, bytes, zip, prefix, name, t.get()));
    ck.tensors_.push_back(std::move(t));
  }
  return ck;
}

Result<TorchCheckpoint> TorchCheckpoint::Open(const std::string& path) {
  PETREL_TRY(MmapFile m, MmapFile::Open(path));
  PETREL_TRY(TorchCheckpoint ck, Parse(m.data(), m.size(), path));
  ck.file_ = std::move(m);  // the mapping's address does not change with the move
  return ck;
}

Result<std::vector<std::string>> ConvertTorchToSafetensors(const std::string& in, const std::string& out_dir) {
  namespace fs = std::filesystem;
  // Input shards, in order, and the tensor -> shard map when sharded.
  std::vector<std::string> shards;
  std::map<std::string, std::string> weight_map;
  const bool is_dir = fs::is_directory(in);
  const std::string index_path = in + "/pytorch_model.bin.index.json";
  if (is_dir && fs::exists(index_path)) {
    PETREL_TRY(Json index, ReadJsonFile(index_path));
    const Json* wm = index.is_object() && index.contains("weight_map") ? &index["weight_map"] : nullptr;
    if (wm == nullptr || !wm->is_object()) return InvalidFormat(index_path, ": missing object \"weight_map\"");
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) return InvalidFormat(index_path, ": weight_map[\"", it.key(), "\"] is not a file name");
      const std::string f = it->get<std::string>();
      if (f.find('/') != std::string::npos || f == "..") return InvalidFormat(index_path, ": bad shard name \"", f, "\"");
      weight_map[it.key()] = f;
      if (std::find(shards.begin(), shards.end(), f) == shards.end()) shards.push_back(f);
    }
    std::sort(shards.begin(), shards.end());
  } else if (is_dir) {
    if (!fs::exists(in + "/pytorch_model.bin")) return NotFound("no pytorch_model.bin or pytorch_model.bin.index.json in ", in);
    shards.push_back("pytorch_model.bin");
  } else {
    shards.push_back(fs::path(in).filename().string());
  }
  const std::string base = is_dir ? in : fs::path(in).parent_path().string();
  const bool sharded = shards.size() > 1 || !weight_map.empty();
  std::vector<std::string> written;
  Json out_map = Json::object();
  int64_t total = 0;
  std::map<std::string, bool> seen;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string src = (base.empty() ? std::string(".") : base) + "/" + shards[i];
    PETREL_TRY(TorchCheckpoint ck, TorchCheckpoint::Open(src));
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    const std::string out_name = sharded ? name : "model.safetensors";
    std::vector<TensorToWrite> tensors;
    for (const auto& t : ck.tensors()) {
      if (seen[t->name]) return InvalidFormat(src, ": tensor `", t->name, "` appears in two shards");
      seen[t->name] = true;
      if (!weight_map.empty()) {
        auto it = weight_map.find(t->name);
        if (it == weight_map.end() || it->second != shards[i]) {
          return InvalidFormat(index_path, ": tensor `", t->name, "` is in ", shards[i], " but the index says ",
                               it == weight_map.end() ? std::string("nothing") : it->second);
        }
      }
      tensors.push_back({t->name, t->dtype, t->shape, t->data});
      out_map[t->name] = out_name;
      total += static_cast<int64_t>(t->nbytes);
    }
    PETREL_TRY(WriteSafetensors(out_dir + "/" + out_name, tensors, {{"format", "pt"}}));
    written.push_back(out_name);
  }
  for (const auto& [k, f] : weight_map) {
    if (!seen[k]) return InvalidFormat(index_path, ": tensor `", k, "` is not in ", f);
  }
  if (sharded) {
    Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", out_map}};
    std::ofstream o(out_dir + "/model.safetensors.index.json");
    o << DumpJson(index, 2) << "\n";
    if (!o) return IoError("cannot write ", out_dir, "/model.safetensors.index.json");
    written.push_back("model.safetensors.index.json");
  }
  return written;
}

}  // namespace petrel::formats
