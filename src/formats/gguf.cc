#include "formats/gguf.h"

#include <cstring>
#include <fstream>

#include "core/quant_blocks.h"

namespace petrel::formats {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int64_t kMaxDims = 4;

// Block size (elements) and bytes per block of a ggml type; 0 for unknown.
struct TypeInfo {
  int64_t block;
  int64_t bytes;
};
TypeInfo InfoOf(uint32_t t) {
  switch ((GgmlType)t) {
    case GgmlType::kF32: return {1, 4};
    case GgmlType::kF16: return {1, 2};
    case GgmlType::kBF16: return {1, 2};
    case GgmlType::kQ4_0: return {32, 18};
    case GgmlType::kQ4_1: return {32, 20};
    case GgmlType::kQ5_0: return {32, 22};
    case GgmlType::kQ5_1: return {32, 24};
    case GgmlType::kQ8_0: return {32, 34};
    case GgmlType::kQ4_K: return {256, 144};
    case GgmlType::kQ5_K: return {256, 176};
    case GgmlType::kQ6_K: return {256, 210};
  }
  return {0, 0};
}

// Bounds-checked little-endian reader over the image.
struct Reader {
  const char* p;
  size_t size;
  size_t pos = 0;
  const std::string& name;

  Status Need(size_t n, const char* what) {
    if (n > size - pos) return InvalidFormat(name, ": truncated reading ", what, " at offset ", pos);
    return OkStatus();
  }
  template <typename T>
  Result<T> Get(const char* what) {
    PETREL_TRY(Need(sizeof(T), what));
    T v;
    std::memcpy(&v, p + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  Result<std::string> Str(const char* what) {
    PETREL_TRY(uint64_t n, Get<uint64_t>(what));
    if (n > size - pos) return InvalidFormat(name, ": string length ", n, " of ", what, " exceeds the file");
    std::string s(p + pos, (size_t)n);
    pos += (size_t)n;
    return s;
  }
};

enum ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32v = 6, kBool = 7, kString = 8,
  kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

Result<Json> ReadValue(Reader& r, uint32_t type, int depth) {
  switch (type) {
    case kU8: { PETREL_TRY(auto v, r.Get<uint8_t>("u8")); return Json(v); }
    case kI8: { PETREL_TRY(auto v, r.Get<int8_t>("i8")); return Json(v); }
    case kU16: { PETREL_TRY(auto v, r.Get<uint16_t>("u16")); return Json(v); }
    case kI16: { PETREL_TRY(auto v, r.Get<int16_t>("i16")); return Json(v); }
    case kU32: { PETREL_TRY(auto v, r.Get<uint32_t>("u32")); return Json(v); }
    case kI32: { PETREL_TRY(auto v, r.Get<int32_t>("i32")); return Json(v); }
    case kF32v: { PETREL_TRY(auto v, r.Get<float>("f32")); return Json(v); }
    case kBool: {
      PETREL_TRY(auto v, r.Get<uint8_t>("bool"));
      if (v > 1) return InvalidFormat(r.name, ": bool value ", (int)v);
      return Json(v == 1);
    }
    case kString: { PETREL_TRY(auto v, r.Str("string value")); return Json(std::move(v)); }
    case kU64: { PETREL_TRY(auto v, r.Get<uint64_t>("u64")); return Json(v); }
    case kI64: { PETREL_TRY(auto v, r.Get<int64_t>("i64")); return Json(v); }
    case kF64: { PETREL_TRY(auto v, r.Get<double>("f64")); return Json(v); }
    case kArray: {
      if (depth > 0) return InvalidFormat(r.name, ": nested arrays are not supported");
      PETREL_TRY(uint32_t et, r.Get<uint32_t>("array type"));
      PETREL_TRY(uint64_t n, r.Get<uint64_t>("array length"));
      // Each element takes at least one byte: a count beyond the rest of the file is corrupt.
      if (n > r.size - r.pos) return InvalidFormat(r.name, ": array length ", n, " exceeds the file");
      Json a = Json::array();
      for (uint64_t i = 0; i < n; ++i) {
        PETREL_TRY(Json v, ReadValue(r, et, depth + 1));
        a.push_back(std::move(v));
      }
      return a;
    }
  }
  return InvalidFormat(r.name, ": unknown metadata value type ", type);
}

}  // namespace

const char* GgmlTypeName(uint32_t t) {
  static const char* const kNames[] = {
      "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
      "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
      "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8",
      "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
  return t < sizeof(kNames) / sizeof(kNames[0]) ? kNames[t] : "unknown";
}

Result<GgufFile> GgufFile::Parse(const char* bytes, size_t size, const std::string& name) {
  GgufFile f;
  f.name_ = name;
  Reader r{bytes, size, 0, f.name_};
  PETREL_TRY(uint32_t magic, r.Get<uint32_t>("magic"));
  if (magic != kMagic) return InvalidFormat(name, ": not a GGUF file (bad magic)");
  PETREL_TRY(f.version_, r.Get<uint32_t>("version"));
  if (f.version_ != 2 && f.version_ != 3)
    return Unsupported(name, ": GGUF version ", f.version_, " (2 and 3 are supported)");
  PETREL_TRY(uint64_t n_tensors, r.Get<uint64_t>("tensor count"));
  PETREL_TRY(uint64_t n_kv, r.Get<uint64_t>("metadata count"));
  if (n_tensors > size / 8 || n_kv > size / 8) return InvalidFormat(name, ": counts exceed the file size");
  for (uint64_t i = 0; i < n_kv; ++i) {
    PETREL_TRY(std::string key, r.Str("metadata key"));
    PETREL_TRY(uint32_t type, r.Get<uint32_t>("metadata type"));
    PETREL_TRY(Json v, ReadValue(r, type, 0));
    if (f.kv_.contains(key)) return InvalidFormat(name, ": duplicate metadata key \"", key, "\"");
    f.kv_[key] = std::move(v);
  }
  uint64_t alignment = 32;
  if (f.kv_.contains("general.alignment")) {
    const Json& a = f.kv_["general.alignment"];
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 || (a.get<uint64_t>() & (a.get<uint64_t>() - 1)) ||
        a.get<uint64_t>() > 65536)
      return InvalidFormat(name, ": general.alignment must be a power of two");
    alignment = a.get<uint64_t>();
  }
  struct Pending {
    uint64_t offset;
  };
  std::vector<Pending> offsets;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    PETREL_TRY(t.name, r.Str("tensor name"));
    PETREL_TRY(uint32_t nd, r.Get<uint32_t>("tensor n_dims"));
    if (nd == 0 || nd > kMaxDims) return InvalidFormat(name, ": tensor `", t.name, "` has ", nd, " dims");
    int64_t ne_total = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      PETREL_TRY(uint64_t ne, r.Get<uint64_t>("tensor dim"));
      if (ne == 0 || ne > (1ull << 40) || ne_total > (int64_t)((1ull << 50) / ne))
        return InvalidFormat(name, ": tensor `", t.name, "` has a bad dimension ", ne);
      t.ne.push_back((int64_t)ne);
      ne_total *= (int64_t)ne;
    }
    PETREL_TRY(t.type, r.Get<uint32_t>("tensor type"));
    PETREL_TRY(uint64_t off, r.Get<uint64_t>("tensor offset"));
    const TypeInfo ti = InfoOf(t.type);
    if (ti.block == 0)
      return Unsupported(name, ": tensor `", t.name, "` has type ", GgmlTypeName(t.type),
                         " (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K are supported)");
    if (t.ne[0] % ti.block != 0)
      return InvalidFormat(name, ": tensor `", t.name, "`: row of ", t.ne[0], " is not a multiple of the ",
                           GgmlTypeName(t.type), " block of ", ti.block);
    t.nbytes = (size_t)(ne_total / ti.block * ti.bytes);
    if (off % alignment != 0) return InvalidFormat(name, ": tensor `", t.name, "` offset ", off, " is not aligned");
    std::vector<int64_t> dims(t.ne.rbegin(), t.ne.rend());
    PETREL_TRY(t.shape, Shape::FromVector(dims));
    switch ((GgmlType)t.type) {
      case GgmlType::kF32: t.direct = true; t.dtype = DType::kF32; break;
      case GgmlType::kF16: t.direct = true; t.dtype = DType::kF16; break;
      case GgmlType::kBF16: t.direct = true; t.dtype = DType::kBF16; break;
      case GgmlType::kQ8_0: t.direct = true; t.dtype = DType::kQ8_0; break;
      case GgmlType::kQ4_0: t.direct = true; t.dtype = DType::kQ4_0; break;
      case GgmlType::kQ4_1: t.direct = true; t.dtype = DType::kQ4_1; break;
      default: t.direct = false; break;
    }
    if (f.index_.count(t.name)) return InvalidFormat(name, ": duplicate tensor `", t.name, "`");
    f.index_[t.name] = f.tensors_.size();
    f.tensors_.push_back(std::move(t));
    offsets.push_back({off});
  }
  const uint64_t data_start = (r.pos + alignment - 1) / alignment * alignment;
  if (data_start > size && !f.tensors_.empty()) return InvalidFormat(name, ": no data section");
  // Tensors must lie inside the data section and not overlap.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (size_t i = 0; i < f.tensors_.size(); ++i) {
    GgufTensor& t = f.tensors_[i];
    const uint64_t off = offsets[i].offset;
    if (off > size - data_start || t.nbytes > size - data_start - off)
      return InvalidFormat(name, ": tensor `", t.name, "` (", t.nbytes, " bytes at ", off,
                           ") extends past the end of the file");
    t.data = bytes + data_start + off;
    ranges.push_back({off, off + t.nbytes});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) return InvalidFormat(name, ": tensor data overlap");
  return f;
}

Result<GgufFile> GgufFile::Open(const std::string& path) {
  PETREL_TRY(MmapFile m, MmapFile::Open(path));
  PETREL_TRY(GgufFile f, Parse(m.data(), m.size(), path));
  f.file_ = std::move(m);  // the mapping's address does not change with the move
  return f;
}

const GgufTensor* GgufFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// K-quant scale/min of sub-block j (6-bit packed), as ggml's get_scale_min_k4.
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

uint16_t U16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

}  // namespace

Status DequantizeGguf(const void* data, uint32_t type, int64_t n, float* y) {
  const auto* p = static_cast<const uint8_t*>(data);
  const TypeInfo ti = InfoOf(type);
  if (ti.block == 0 || n % ti.block != 0) return InvalidArgument("DequantizeGguf: type ", GgmlTypeName(type), " n=", n);
  switch ((GgmlType)type) {
    case GgmlType::kF32: ConvertToF32(data, DType::kF32, y, n); return OkStatus();
    case GgmlType::kF16: ConvertToF32(data, DType::kF16, y, n); return OkStatus();
    case GgmlType::kBF16: ConvertToF32(data, DType::kBF16, y, n); return OkStatus();
    case GgmlType::kQ8_0: quant::DequantizeRow(data, DType::kQ8_0, y, n); return OkStatus();
    case GgmlType::kQ4_0: quant::DequantizeRow(data, DType::kQ4_0, y, n); return OkStatus();
    case GgmlType::kQ4_1: quant::DequantizeRow(data, DType::kQ4_1, y, n); return OkStatus();
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1: {
      // {f16 d, [f16 m], u32 qh, u8 qs[16]}: 5th bit of element j in bit j of qh (j + 16: bit j + 16).
      const bool has_min = (GgmlType)type == GgmlType::kQ5_1;
      for (int64_t b = 0; b < n / 32; ++b, p += ti.bytes, y += 32) {
        const float d = F16ToF32(U16(p));
        const float m = has_min ? F16ToF32(U16(p + 2)) : 0.0f;
        const uint8_t* qhp = p + (has_min ? 4 : 2);
        const uint32_t qh = (uint32_t)qhp[0] | ((uint32_t)qhp[1] << 8) | ((uint32_t)qhp[2] << 16) | ((uint32_t)qhp[3] << 24);
        const uint8_t* qs = qhp + 4;
        for (int j = 0; j < 16; ++j) {
          const int x0 = (qs[j] & 0xF) | (((qh >> j) & 1) << 4);
          const int x1 = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
          y[j] = has_min ? d * x0 + m : d * (x0 - 16);
          y[j + 16] = has_min ? d * x1 + m : d * (x1 - 16);
        }
      }
      return OkStatus();
    }
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: {
      // {f16 d, f16 dmin, u8 scales[12], [u8 qh[32]], u8 qs[128]}: 8 sub-blocks of 32 with 6-bit
      // scale and min; w = d * sc * q - dmin * m.
      const bool five = (GgmlType)type == GgmlType::kQ5_K;
      for (int64_t b = 0; b < n / 256; ++b, p += ti.bytes) {
        const float d = F16ToF32(U16(p)), dmin = F16ToF32(U16(p + 2));
        const uint8_t* sc = p + 4;
        const uint8_t* qh = p + 16;
        const uint8_t* q = five ? p + 48 : p + 16;
        int is = 0;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 256; j += 64) {
          uint8_t s, m;
          ScaleMinK4(is, sc, &s, &m);
          const float d1 = d * s, m1 = dmin * m;
          ScaleMinK4(is + 1, sc, &s, &m);
          const float d2 = d * s, m2 = dmin * m;
          for (int l = 0; l < 32; ++l)
            *y++ = d1 * ((q[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
          for (int l = 0; l < 32; ++l)
            *y++ = d2 * ((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
          q += 32;
          is += 2;
          u1 <<= 2;
          u2 <<= 2;
        }
      }
      return OkStatus();
    }
    case GgmlType::kQ6_K: {
      // {u8 ql[128], u8 qh[64], i8 scales[16], f16 d}: 6-bit codes (low 4 bits in ql, high 2 in qh),
      // 16 sub-blocks of 16 with an int8 scale; w = d * sc * (q - 32).
      for (int64_t b = 0; b < n / 256; ++b, p += ti.bytes) {
        const uint8_t* ql = p;
        const uint8_t* qh = p + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
        const float d = F16ToF32(U16(p + 208));
        for (int half = 0; half < 2; ++half) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
          }
          y += 128;
          ql += 64;
          qh += 32;
          sc += 8;
        }
      }
      return OkStatus();
    }
  }
  return Unsupported("DequantizeGguf: type ", GgmlTypeName(type));
}

namespace {

void PutStr(std::string& out, const std::string& s) {
  const uint64_t n = s.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += s;
}
template <typename T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

Status PutValue(std::string& out, const OrderedJson& v, bool with_type) {
  auto type = [&](uint32_t t) {
    if (with_type) Put<uint32_t>(out, t);
  };
  if (v.is_string()) { type(kString); PutStr(out, v.get<std::string>()); }
  else if (v.is_boolean()) { type(kBool); Put<uint8_t>(out, v.get<bool>() ? 1 : 0); }
  else if (v.is_number_float()) { type(kF32v); Put<float>(out, v.get<float>()); }
  else if (v.is_number_unsigned() && v.get<uint64_t>() <= 0xffffffffull) { type(kU32); Put<uint32_t>(out, v.get<uint32_t>()); }
  else if (v.is_number_integer()) { type(kI64); Put<int64_t>(out, v.get<int64_t>()); }
  else return InvalidArgument("WriteGguf: unsupported metadata value ", DumpJson(v));
  return OkStatus();
}

}  // namespace

Status WriteGguf(const std::string& path, const OrderedJson& kv, const std::vector<GgufTensorToWrite>& tensors) {
  std::string h;
  Put<uint32_t>(h, kMagic);
  Put<uint32_t>(h, 3);
  Put<uint64_t>(h, tensors.size());
  Put<uint64_t>(h, kv.size());
  for (auto it = kv.begin(); it != kv.end(); ++it) {
    PutStr(h, it.key());
    const OrderedJson& v = it.value();
    if (v.is_array()) {
      Put<uint32_t>(h, kArray);
      // Element type from the first element (homogeneous arrays only).
      uint32_t et = kString;
      if (!v.empty()) {
        if (v[0].is_number_float()) et = kF32v;
        else if (v[0].is_boolean()) et = kBool;
        else if (v[0].is_number_integer()) et = kI32;
      }
      Put<uint32_t>(h, et);
      Put<uint64_t>(h, v.size());
      for (const auto& e : v) {
        if (et == kI32) Put<int32_t>(h, e.get<int32_t>());
        else PETREL_TRY(PutValue(h, e, false));
      }
    } else {
      PETREL_TRY(PutValue(h, v, true));
    }
  }
  uint64_t off = 0;
  std::vector<uint64_t> offs;
  for (const auto& t : tensors) {
    PutStr(h, t.name);
    Put<uint32_t>(h, (uint32_t)t.ne.size());
    for (int64_t d : t.ne) Put<uint64_t>(h, (uint64_t)d);
    Put<uint32_t>(h, t.type);
    Put<uint64_t>(h, off);
    offs.push_back(off);
    off = (off + t.nbytes + 31) / 32 * 32;
  }
  h.resize((h.size() + 31) / 32 * 32, '\0');
  std::ofstream o(path, std::ios::binary);
  if (!o) return IoError("cannot create ", path);
  o.write(h.data(), (std::streamsize)h.size());
  static const char zeros[32] = {};
  for (size_t i = 0; i < tensors.size(); ++i) {
    o.write(static_cast<const char*>(tensors[i].data), (std::streamsize)tensors[i].nbytes);
    const size_t pad = (size_t)((32 - tensors[i].nbytes % 32) % 32);
    o.write(zeros, (std::streamsize)pad);
  }
  if (!o) return IoError("writing ", path);
  return OkStatus();
}

}  // namespace petrel::formats
