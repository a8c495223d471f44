#include "formats/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/json_util.h"

namespace petrel::formats {

namespace {

// Headers larger than this are refused before parsing (the Python library uses 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

}  // namespace

Result<std::vector<TensorInfo>> SafetensorsFile::ParseHeader(
    const char* bytes, size_t size, const std::string& name,
    std::map<std::string, std::string>* metadata) {
  if (size < 8) return InvalidFormat(name, ": file is ", size, " bytes, too small for a safetensors header");
  uint64_t n = 0;
  std::memcpy(&n, bytes, 8);  // little-endian on every platform we build for
  if (n > kMaxHeaderBytes) return InvalidFormat(name, ": header length ", n, " exceeds the 100 MiB limit");
  if (n > size - 8) return InvalidFormat(name, ": header length ", n, " exceeds file size ", size);
  const char* data_start = bytes + 8 + n;
  const uint64_t data_size = size - 8 - n;

  auto parsed = ParseJson(std::string_view(bytes + 8, n), name + " header");
  if (!parsed.ok()) return parsed.error();
  const Json& h = *parsed;
  if (!h.is_object()) return InvalidFormat(name, ": header is not a JSON object");

  std::vector<TensorInfo> out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& tname = it.key();
    const Json& t = it.value();
    if (tname == "__metadata__") {
      if (!t.is_object()) return InvalidFormat(name, ": __metadata__ is not an object");
      for (auto m = t.begin(); m != t.end(); ++m) {
        if (!m.value().is_string()) return InvalidFormat(name, ": __metadata__[\"", m.key(), "\"] is not a string");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](auto... what) { return InvalidFormat(name, ": tensor `", tname, "`: ", what...); };
    // Keeps the code of a nested error (an unknown dtype or a rank > 4 is kUnsupported).
    auto wrap = [&](const Error& e) { return e.WithContext(name + ": tensor `" + tname + "`"); };
    if (!t.is_object()) return bad("entry is not an object");
    if (!t.contains("dtype") || !t["dtype"].is_string()) return bad("missing or non-string dtype");
    if (!t.contains("shape") || !t["shape"].is_array()) return bad("missing or non-array shape");
    if (!t.contains("data_offsets") || !t["data_offsets"].is_array() || t["data_offsets"].size() != 2)
      return bad("data_offsets must be [begin, end]");
    auto dt = ParseSafetensorsDType(t["dtype"].get<std::string>());
    if (!dt.ok()) return wrap(dt.error());
    std::vector<int64_t> dims;
    uint64_t elems = 1;
    for (const Json& d : t["shape"]) {
      if (!d.is_number_unsigned()) return bad("shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      if (v > (1ull << 40) || (v && elems > (1ull << 48) / v)) return bad("shape is too large");
      elems *= v;
      dims.push_back((int64_t)v);
    }
    auto shape = Shape::FromVector(dims);
    if (!shape.ok()) return wrap(shape.error());
    const Json& off = t["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      return bad("data_offsets must be non-negative integers");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e) return bad("data_offsets begin ", b, " > end ", e);
    if (e > data_size) return bad("data_offsets end ", e, " is beyond the data section (", data_size, " bytes)");
    const uint64_t want = elems * DTypeSize(*dt);
    if (e - b != want) return bad("byte size ", e - b, " != ", shape->ToString(), " x ", DTypeName(*dt), " = ", want);
    out.push_back(TensorInfo{tname, *dt, *shape, data_start + b, (size_t)(e - b), name});
    ranges.push_back({b, e});
  }
  // nlohmann keeps the last of duplicate keys silently; detect duplicates on the raw text is
  // costly, so we check through a second, callback-based parse of key names at depth 1.
  {
    std::vector<std::string> keys;
    auto cb = [&](int d, Json::parse_event_t ev, Json& parsed_value) {
      if (ev == Json::parse_event_t::key && d == 1) keys.push_back(parsed_value.get<std::string>());
      return true;
    };
    try {
      Json discard = Json::parse(std::string_view(bytes + 8, n), cb);
      (void)discard;
    } catch (...) {
    }
    std::sort(keys.begin(), keys.end());
    auto dup = std::adjacent_find(keys.begin(), keys.end());
    if (dup != keys.end()) return InvalidFormat(name, ": tensor `", *dup, "` appears twice in the header");
  }
  // Overlap check over ranges sorted by begin (empty tensors may share an offset). Each non-empty
  // range is compared with the furthest-reaching non-empty range before it, not only its sorted
  // neighbour: an empty tensor (or a short one) in between must not hide an overlap.
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  size_t reach = order.size();  // index (into out/ranges) of the range with the largest end so far
  for (size_t i : order) {
    const auto& cur = ranges[i];
    if (cur.first == cur.second) continue;
    if (reach != order.size() && cur.first < ranges[reach].second) {
      return InvalidFormat(name, ": tensors `", out[reach].name, "` and `", out[i].name,
                           "` overlap in the data section");
    }
    if (reach == order.size() || cur.second > ranges[reach].second) reach = i;
  }
  return out;
}

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  SafetensorsFile f;
  PETREL_TRY(f.file_, MmapFile::Open(path));
  PETREL_TRY(f.tensors_, ParseHeader(f.file_.data(), f.file_.size(), path, &f.metadata_));
  return f;
}

Result<TensorStore> TensorStore::OpenFiles(const std::vector<std::string>& paths) {
  TensorStore store;
  for (const auto& p : paths) {
    PETREL_TRY(SafetensorsFile f, SafetensorsFile::Open(p));
    store.files_.push_back(std::make_unique<SafetensorsFile>(std::move(f)));
    for (const auto& t : store.files_.back()->tensors()) {
      if (!store.by_name_.emplace(t.name, &t).second) {
        return InvalidFormat("tensor `", t.name, "` appears in both ", store.by_name_[t.name]->file,
                             " and ", p);
      }
    }
  }
  return store;
}

Result<TensorStore> TensorStore::OpenDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  const std::string single = (fs::path(dir) / "model.safetensors").string();
  if (FileExists(index_path)) {
    PETREL_TRY(Json index, ReadJsonFile(index_path));
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      return InvalidFormat(index_path, ": missing object \"weight_map\"");
    std::vector<std::string> shards;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string()) return InvalidFormat(index_path, ": weight_map[\"", it.key(), "\"] is not a string");
      std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        return InvalidFormat(index_path, ": shard name \"", shard, "\" must be a plain file name");
      if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
    }
    std::vector<std::string> paths;
    for (const auto& s : shards) paths.push_back((fs::path(dir) / s).string());
    PETREL_TRY(TensorStore store, OpenFiles(paths));
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      const TensorInfo* t = store.Find(it.key());
      const std::string want = (fs::path(dir) / it.value().get<std::string>()).string();
      if (!t) return InvalidFormat(index_path, ": tensor `", it.key(), "` is listed but not found in ", want);
      if (t->file != want) return InvalidFormat(index_path, ": tensor `", it.key(), "` is in ", t->file, ", index says ", want);
    }
    return store;
  }
  if (FileExists(single)) return OpenFiles({single});
  return NotFound(dir, ": no model.safetensors or model.safetensors.index.json");
}

const TensorInfo* TensorStore::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

int64_t TensorStore::TotalBytes() const {
  int64_t n = 0;
  for (const auto& [name, t] : by_name_) n += (int64_t)t->nbytes;
  return n;
}

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> sorted;
  for (const auto& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson m = OrderedJson::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const auto* t : sorted) {
    const uint64_t nbytes = (uint64_t)t->shape.NumElements() * DTypeSize(t->dtype);
    OrderedJson e = OrderedJson::object();
    e["dtype"] = DTypeName(t->dtype);
    e["shape"] = OrderedJson::array();
    for (int i = 0; i < t->shape.rank; ++i) e["shape"].push_back(t->shape[i]);
    e["data_offsets"] = {offset, offset + nbytes};
    header[t->name] = e;
    offset += nbytes;
  }
  std::string h = DumpJson(header);
  while ((8 + h.size()) % 8) h.push_back(' ');  // data section starts 8-byte aligned
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return IoError(tmp, ": cannot create: ", std::strerror(errno));
  uint64_t n = h.size();
  bool ok = std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  for (const auto* t : sorted) {
    const size_t nbytes = (size_t)t->shape.NumElements() * DTypeSize(t->dtype);
    if (ok && nbytes) ok = std::fwrite(t->data, 1, nbytes, f) == nbytes;
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return IoError(path, ": write failed");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return IoError(path, ": rename failed");
  return OkStatus();
}

}  // namespace petrel::formats
