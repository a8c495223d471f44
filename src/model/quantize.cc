#include "model/quantize.h"

#include <atomic>
#include <charconv>

#include "core/quant_blocks.h"
#include "core/thread_pool.h"

namespace petrel::model {

std::string QuantSpec::ToString() const {
  if (!enabled) return "none";
  std::string s = DTypeName(linear);
  if (linear == DType::kQ4_1) s += " (group " + std::to_string(group) + ")";
  return s + ", embedding/lm_head " + DTypeName(embed);
}

Result<QuantSpec> ParseQuantSpec(std::string_view s) {
  QuantSpec q;
  if (s.empty() || s == "none") return q;
  q.enabled = true;
  if (s == "int8" || s == "q8_0") return q;
  if (s == "q4_0" || s == "q4_0:pure") {
    q.linear = DType::kQ4_0;
    if (s == "q4_0:pure") q.embed = DType::kQ4_0;
    return q;
  }
  if (s.substr(0, 4) == "int4") {
    q.linear = DType::kQ4_1;
    q.group = 64;
    if (s.size() > 4) {
      if (s[4] != ':') return InvalidArgument("--quant \"", s, "\": expected int4 or int4:GROUP");
      const std::string_view g = s.substr(5);
      int64_t v = 0;
      auto [p, ec] = std::from_chars(g.data(), g.data() + g.size(), v);
      if (ec != std::errc() || p != g.data() + g.size() || (v != 32 && v != 64 && v != 128))
        return InvalidArgument("--quant \"", s, "\": group must be 32, 64 or 128");
      q.group = v;
    }
    return q;
  }
  return InvalidArgument("--quant \"", s, "\" is not supported (int8, int4, int4:32|64|128, q4_0, q4_0:pure)");
}

namespace {

// Quantizes a float [N, K] view into a new tensor of `dt`.
Tensor QuantizeMatrix(const TensorView& src, DType dt, int64_t group, ThreadPool& pool) {
  const int64_t N = src.dim(0), K = src.dim(1);
  Tensor out(dt, {N, K});
  const size_t in_row = DTypeBytes(src.dtype, K), out_row = DTypeBytes(dt, K);
  pool.ParallelFor(N, 16, [&](int64_t b, int64_t e, int) {
    std::vector<float> row(K);
    for (int64_t n = b; n < e; ++n) {
      ConvertToF32(static_cast<const char*>(src.data) + n * in_row, src.dtype, row.data(), K);
      quant::QuantizeRow(row.data(), K, dt, static_cast<char*>(out.data()) + n * out_row, group);
    }
  });
  return out;
}

}  // namespace

int QuantizeWeights(const formats::ModelConfig& c, const QuantSpec& q, Weights& w,
                    std::vector<Tensor>& owned, int threads) {
  if (!q.enabled) return 0;
  ThreadPool pool(threads > 0 ? threads : ThreadPool::HardwareThreads());
  int count = 0;
  auto quantize = [&](TensorView& slot, DType dt, int64_t group) {
    if (slot.empty() || IsBlockQuantized(slot.dtype) || slot.shape.rank != 2) return;
    if (slot.dim(1) % group != 0 || slot.dim(1) % quant::kBlock != 0) return;  // stays float
    owned.push_back(QuantizeMatrix(slot, dt, group, pool));
    slot = owned.back().view();
    ++count;
  };
  for (LayerWeights& l : w.layers)
    for (TensorView* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
      quantize(*m, q.linear, q.linear == DType::kQ4_1 ? q.group : quant::kBlock);
  const bool tied = w.lm_head.data == w.embed.data;
  quantize(w.embed, q.embed, quant::kBlock);
  if (tied) w.lm_head = w.embed;
  else quantize(w.lm_head, q.embed, quant::kBlock);
  return count;
}

Status MlxModuleQuantization(const Json& cfg, const std::string& prefix, bool* quantized, int* bits,
                             int64_t* group) {
  *quantized = false;
  if (!cfg.is_object()) return InvalidFormat("config.json: \"quantization\" must be an object");
  const Json* src = &cfg;
  if (cfg.contains(prefix)) {
    const Json& o = cfg[prefix];
    if (o.is_boolean()) {
      if (!o.get<bool>()) return OkStatus();
    } else if (o.is_object()) {
      src = &o;
    } else {
      return InvalidFormat("config.json: quantization override \"", prefix, "\" must be an object or false");
    }
  }
  if (src->contains("mode") && (*src)["mode"] != "affine")
    return Unsupported("config.json: quantization mode ", DumpJson((*src)["mode"]), " of \"", prefix,
                       "\" (only affine)");
  if (!src->contains("bits") || !(*src)["bits"].is_number_integer() || !src->contains("group_size") ||
      !(*src)["group_size"].is_number_integer())
    return InvalidFormat("config.json: quantization for \"", prefix, "\" needs integer bits and group_size");
  *bits = (*src)["bits"].get<int>();
  *group = (*src)["group_size"].get<int64_t>();
  *quantized = true;
  return OkStatus();
}

Result<Tensor> ConvertMlxQuantized(const formats::TensorStore& store, const std::string& prefix,
                                   const Shape& logical, int bits, int64_t group, int64_t* inexact) {
  const std::string wn = prefix + ".weight", sn = prefix + ".scales", bn = prefix + ".biases";
  const formats::TensorInfo* wt = store.Find(wn);
  const formats::TensorInfo* st = store.Find(sn);
  const formats::TensorInfo* bt = store.Find(bn);
  if (!wt || !st || !bt) return NotFound("MLX quantized `", prefix, "`: needs .weight, .scales and .biases");
  if (bits != 4 && bits != 8)
    return Unsupported("MLX quantized `", prefix, "`: ", bits, "-bit codes (4 and 8 are supported)");
  if (group != 32 && group != 64 && group != 128)
    return Unsupported("MLX quantized `", prefix, "`: group_size ", group, " (32, 64, 128 are supported)");
  if (logical.rank != 2) return InvalidFormat("MLX quantized `", prefix, "`: not a matrix");
  const int64_t N = logical[0], K = logical[1];
  if (K % group != 0) return InvalidFormat("MLX quantized `", prefix, "`: in=", K, " not a multiple of group ", group);
  const Shape want_w{N, K * bits / 32}, want_s{N, K / group};
  if (wt->dtype != DType::kU32 || !(wt->shape == want_w))
    return InvalidFormat("MLX quantized `", wn, "`: expected U32 ", want_w.ToString(), ", got ",
                         DTypeName(wt->dtype), " ", wt->shape.ToString());
  for (const formats::TensorInfo* t : {st, bt})
    if (!(t->shape == want_s) || (t->dtype != DType::kF32 && t->dtype != DType::kF16 && t->dtype != DType::kBF16))
      return InvalidFormat("MLX quantized `", t->name, "`: expected a float ", want_s.ToString(), ", got ",
                           DTypeName(t->dtype), " ", t->shape.ToString());
  const DType dt = bits == 4 ? DType::kQ4_1 : DType::kQ8_A;
  Tensor out(dt, {N, K});
  const int64_t ng = K / group;
  std::vector<float> sc(ng), bi(ng);
  const auto* codes = static_cast<const uint32_t*>(wt->data);
  const int64_t words_per_row = K * bits / 32;
  const size_t out_row = DTypeBytes(dt, K);
  for (int64_t n = 0; n < N; ++n) {
    ConvertToF32(static_cast<const char*>(st->data) + n * DTypeBytes(st->dtype, ng), st->dtype, sc.data(), ng);
    ConvertToF32(static_cast<const char*>(bt->data) + n * DTypeBytes(bt->dtype, ng), bt->dtype, bi.data(), ng);
    const uint32_t* row = codes + n * words_per_row;
    char* dst = static_cast<char*>(out.data()) + n * out_row;
    for (int64_t b = 0; b < K / quant::kBlock; ++b) {
      const int64_t g = b * quant::kBlock / group;
      const uint16_t dh = F32ToF16(sc[g]), mh = F32ToF16(bi[g]);
      if (F16ToF32(dh) != sc[g]) ++*inexact;
      if (F16ToF32(mh) != bi[g]) ++*inexact;
      uint8_t q[32];
      for (int i = 0; i < 32; ++i) {
        const int64_t e = b * 32 + i;  // element index in the row; codes are LSB-first
        q[i] = bits == 4 ? (uint8_t)((row[e / 8] >> (4 * (e % 8))) & 0xF)
                         : (uint8_t)((row[e / 4] >> (8 * (e % 4))) & 0xFF);
      }
      if (bits == 4) {
        auto& blk = reinterpret_cast<quant::BlockQ4_1*>(dst)[b];
        blk.d = dh;
        blk.m = mh;
        for (int i = 0; i < 16; ++i) blk.q[i] = (uint8_t)(q[i] | (q[i + 16] << 4));
      } else {
        auto& blk = reinterpret_cast<quant::BlockQ8_A*>(dst)[b];
        blk.d = dh;
        blk.m = mh;
        for (int i = 0; i < 32; ++i) blk.q[i] = q[i];
      }
    }
  }
  return out;
}

}  // namespace petrel::model
