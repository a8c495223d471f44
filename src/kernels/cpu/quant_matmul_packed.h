// Row-interleaved ("packed") copies of Q8_0 / Q4_0 / Q4_1 / Q8_A weights for the AVX-512 VNNI
// matmul.
//
// Why: in the plain GGUF layout each 32-block of one row gives one short integer dot product that
// must then be converted to f32 and scaled by its own dw * dx — on this CPU the conversion and the
// scaling cost as much as the dot product itself. Interleaving 16 rows makes one 512-bit register
// hold 4 consecutive weights of each of 16 rows (lane r = row r), so one vpdpbusd against 4
// activation bytes broadcast to all lanes advances 16 rows at once; a 32-block takes 8 of them
// (Q4_0: 4 loads, each giving the low and the high nibbles) and then ONE conversion and one fma
// with a vector of 16 row scales. Decode reads every weight byte once; prefill reuses each loaded
// weight register across several tokens and each activation broadcast across 16-32 rows.
//
// The arithmetic is the usual one for GGML's block types (ggml-common.h block_q8_0 / block_q4_0 /
// block_q4_1, llama.cpp's vec_dot_q8_0_q8_0 / q4_0_q8_0 / q4_1_q8_1: integer dot products of the
// weight codes with int8 activations quantized per 32-block, scaled by d_w * d_x); only the memory
// layout is petrel's. vpdpbusd multiplies unsigned by signed bytes, so the weight codes are stored
// unsigned and the offset folded into the integer accumulator's start value:
//   Q8_0: u = q + 128      w = d (u - 128)   sum_i w_i x_i = d dx (u . qx - 128 sum(qx))
//   Q4_0: u = q (0..15)    w = d (u - 8)     sum_i w_i x_i = d dx (u . qx - 8 sum(qx))
//   Q4_1: u = q (0..15)    w = d u + m       sum_i w_i x_i = d dx (u . qx) + m dx sum(qx)
//   Q8_A: u = q (0..255)   w = d u + m       likewise
// (Q4_1 is what `--quant int4`, `petrel quantize --type int4` and MLX 4-bit checkpoints load as;
// Q8_A MLX 8-bit ones.)
//
// Layout of N rows (N a multiple of 16), nb = K / 32 blocks per row, groups g = 0 .. N/16 - 1:
//   codes  one CB-byte chunk per (g, b), CB = 512 (Q8_0, Q8_A) or 256 (Q4_0, Q4_1), at chunk
//          index PackedChunk(g, b) = g nb + b: each group's blocks one after the other, so a
//          decode tile of G groups reads G sequential streams. Inside a chunk, 64-byte vector j
//          holds at byte 4 r + c:
//            Q8_0, Q8_A (j = 0..7): u of element 4 j + c of row 16 g + r;
//            Q4_0, Q4_1 (j = 0..3): element 4 j + c in the low nibble, element 16 + 4 j + c in
//            the high.
//   scales 16 f16 per (g, b) at the same chunk index (PackedScaleStride apart): d of block b of
//          row 16 g + r; Q4_1 / Q8_A then 16 f16 of m (the chunk's 64 bytes one cache line).
// (Q4_0 was packed block-major in super-groups of 4 groups - one stream per tile - until
// bench/weights_pass_bench showed the per-group streams faster: a whole-model Q4_0 decode pass
// 53-66% -> 82% of the read probe (Q8_0 97-100%), tg128 on the Q4_0 --pure GGUF +4-11% in three
// alternating pairs.)
// Same bytes as the plain tensor (34 / 18 / 20 / 36 per block). The packed copy is made once per
// weight at load (CpuBackend::UploadWeight) and replaces the plain one (PackedWeights below).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <mutex>
#include <unordered_map>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quant_matmul.h"

namespace petrel {
class ThreadPool;
}

namespace petrel::kernels::cpu {

constexpr int kPackRows = 16;

// Bytes of one (group, block) chunk of codes.
constexpr int64_t PackedChunkBytes(DType t) {
  return t == DType::kQ8_0 || t == DType::kQ8_A ? 512 : 256;
}
// Whether the type has a min per block (w = d u + m).
constexpr bool PackedHasMin(DType t) { return t == DType::kQ4_1 || t == DType::kQ8_A; }
// f16 values of one (group, block) chunk of scales: d of 16 rows (and their m).
constexpr int64_t PackedScaleStride(DType t) { return PackedHasMin(t) ? 2 * 16 : 16; }

struct PackedQuant {
  DType type = DType::kQ8_0;  // kQ8_0, kQ4_0, kQ4_1 or kQ8_A
  int64_t N = 0, K = 0, nb = 0;
  const uint8_t* codes = nullptr;
  const uint16_t* scales = nullptr;
};

// Groups per decode tile (64 rows): the decode work is split in chunks of whole tiles.
constexpr int64_t kPackTile = 4;

// Index of the (group g, block b) chunk: codes at index * CB bytes, scales at index *
// PackedScaleStride.
inline int64_t PackedChunk(const PackedQuant& p, int64_t g, int64_t b) { return g * p.nb + b; }

// Whether a weight [N, K] of type t has a packed form: Q8_0 / Q4_0 / Q4_1 / Q8_A, N % 16 == 0,
// K % 32 == 0.
bool CanPack(DType t, int64_t N, int64_t K);

// Packs groups [g_begin, g_end) of the plain weight w ([N, K] of p.type) into p's buffers.
void PackGroups(const void* w, const PackedQuant& p, int64_t g_begin, int64_t g_end);

// Packed copies owned by a backend. The CPU backend's UploadWeight packs each packable weight and
// returns a view of the packed buffer in place of the plain tensor (same dtype and shape; its
// NumBytes() bytes are the codes then the scales), as a CUDA upload returns a device view: the
// model then holds only packed weights, the loader frees the plain copies it made, and the
// backend's ops recognise a packed weight by Find() on that view's data pointer (MatMul; Embedding
// unpacks rows, PackedRowsToF32). Add() and Find() may run concurrently.
class PackedWeights {
 public:
  // Packs w (on `pool`) unless it cannot be packed or the environment sets PETREL_NO_PACK=1 (A/B
  // benchmarks of the plain kernel); returns the packed copy, or nullptr. Adding the same memory
  // again with the same type and shape (a tied lm_head is the embedding's view) returns the same
  // copy, so an added weight's memory must stay unchanged until the uploads are done.
  const PackedQuant* Add(const TensorView& w, ThreadPool& pool);
  // The packed copy whose view (codes) starts at `data`, with this type and shape, or nullptr.
  const PackedQuant* Find(const void* data, DType t, int64_t N, int64_t K) const;
  size_t bytes() const;

 private:
  struct Entry {
    PackedQuant p;
    std::unique_ptr<uint8_t, void (*)(void*)> buf{nullptr, nullptr};
    size_t bytes = 0;
  };
  mutable std::mutex mu_;
  std::unordered_map<const void*, Entry> map_;                    // by the plain weight's address
  std::unordered_map<const void*, const PackedQuant*> by_codes_;  // by the packed view's address
};

// The view of a packed copy that stands for the weight [p.N, p.K] of p.type.
TensorView PackedView(const PackedQuant& p);

// Rows [rows[i]] of a packed weight as f32 (out: rows.size() x K), bit-identical to dequantizing
// the plain rows (quant::DequantizeRow).
void PackedRowsToF32(const PackedQuant& p, std::span<const int32_t> rows, float* out);

// The per-ISA kernels over groups [g_begin, g_end) (16 output columns each) for all a.T rows;
// a.qsum must be filled. m.w / m.w_dtype are unused (p holds the weights).
using PackedMatMulFn = void (*)(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a,
                                int64_t g_begin, int64_t g_end);
void PackedMatMulGeneric(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a,
                         int64_t g_begin, int64_t g_end);
void PackedMatMulAvx512(const MatMulArgs& m, const PackedQuant& p, const QuantActs& a,
                        int64_t g_begin, int64_t g_end);

// The whole product on `pool`: the AVX-512 kernel when isa is kAvx512, else the generic one.
void PackedQuantMatMul(const MatMulArgs& m, const PackedQuant& p, ThreadPool& pool, Isa isa);
// Several products of the same activations (ms[i] with weights ps[i]; equal x, T, K): for decode
// rows (T <= kDecodeMaxRows) x quantised once and one pass of the threads over all the products' groups;
// more rows product by product.
void PackedQuantMatMuls(std::span<const MatMulArgs> ms, std::span<const PackedQuant* const> ps,
                        ThreadPool& pool, Isa isa);

}  // namespace petrel::kernels::cpu
