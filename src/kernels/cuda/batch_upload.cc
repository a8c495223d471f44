// UploadBatch (device_memory.h): a step's index arrays packed into one pinned staging buffer and
// copied to the device in one transfer.
#include <algorithm>
#include <cstring>

#include "kernels/cuda/device_memory.h"

namespace petrel::kernels::cuda {

// Packs `meta` into b.staging and uploads it to b.dev (one copy). Layout (256-byte aligned
// sections): tokens i32[cap_rows] | slots i64[cap_rows] | positions | logit_rows | row_seq
// (i32[cap_rows] each) | seq_info i32[cap_seqs * 3] | block_tables i32[cap_seqs * table_stride].
// Tokens first, at offset 0 whatever the capacities: with keep_tokens the copy starts after
// them, leaving the ids an earlier kernel wrote there (pipelined decoding, ArgMaxAsync).
void UploadBatch(const BatchMetadata& meta, DeviceBatch& b, cudaStream_t stream, bool keep_tokens) {
  int64_t n_rows = 0, max_table = 0;
  for (const AttentionSeq& s : meta.seqs) {
    n_rows = std::max<int64_t>(n_rows, s.q_begin + s.q_len);
    max_table = std::max<int64_t>(max_table, (int64_t)s.block_table.size());
  }
  const int64_t rows_needed = std::max({n_rows, (int64_t)meta.tokens.size(),
                                        (int64_t)meta.positions.size(),
                                        (int64_t)meta.slots.size(), (int64_t)meta.logit_rows.size()});
  // Capacities only grow, so addresses stay stable across steps (graphs depend on that).
  b.cap_rows = std::max(b.cap_rows, NextPow2(std::max<int64_t>(rows_needed, 16)));
  b.cap_seqs = std::max(b.cap_seqs, NextPow2(std::max<int64_t>((int64_t)meta.seqs.size(), 16)));
  b.table_stride = std::max<int>(b.table_stride, (int)RoundUp(std::max<int64_t>(max_table, 1), 64));
  size_t off = 0;
  auto section = [&](size_t bytes) {
    const size_t at = off;
    off = RoundUp(off + bytes, 256);
    return at;
  };
  const size_t o_tokens = section(b.cap_rows * 4), o_slots = section(b.cap_rows * 8),
               o_pos = section(b.cap_rows * 4), o_logit = section(b.cap_rows * 4),
               o_rowseq = section(b.cap_rows * 4), o_info = section(b.cap_seqs * 12),
               o_tables = section((size_t)b.cap_seqs * b.table_stride * 4);
  const size_t used = o_tables + meta.seqs.size() * (size_t)b.table_stride * 4;
  CUDA_CHECK(cudaEventSynchronize(b.uploaded));  // the previous upload has left the staging
  if (off > b.dev.bytes()) {
    // Every stream: kernels of an earlier step may still write this copy's tokens (the ids of a
    // pipelined ArgMax) or read it.
    CUDA_CHECK(cudaDeviceSynchronize());
    DeviceBuffer grown(off);
    if (keep_tokens && b.dev.get())
      CUDA_CHECK(cudaMemcpy(grown.get(), b.dev.get(), meta.tokens.size() * 4, cudaMemcpyDeviceToDevice));
    b.dev = std::move(grown);
  }
  b.staging.Reserve(off);
  char* h = static_cast<char*>(b.staging.get());
  auto put = [&](size_t at, const void* src, size_t bytes) {
    if (bytes) std::memcpy(h + at, src, bytes);
  };
  put(o_slots, meta.slots.data(), meta.slots.size() * 8);
  if (!keep_tokens) put(o_tokens, meta.tokens.data(), meta.tokens.size() * 4);
  put(o_pos, meta.positions.data(), meta.positions.size() * 4);
  put(o_logit, meta.logit_rows.data(), meta.logit_rows.size() * 4);
  int32_t* row_seq = reinterpret_cast<int32_t*>(h + o_rowseq);
  int32_t* info = reinterpret_cast<int32_t*>(h + o_info);
  int32_t* tables = reinterpret_cast<int32_t*>(h + o_tables);
  std::fill(row_seq, row_seq + n_rows, 0);
  for (size_t s = 0; s < meta.seqs.size(); ++s) {
    const AttentionSeq& q = meta.seqs[s];
    for (int i = 0; i < q.q_len; ++i) row_seq[q.q_begin + i] = (int32_t)s;
    info[3 * s] = q.q_begin;
    info[3 * s + 1] = q.q_len;
    info[3 * s + 2] = q.ctx_len;
    int32_t* t = tables + s * b.table_stride;
    std::copy(q.block_table.begin(), q.block_table.end(), t);
    std::fill(t + q.block_table.size(), t + b.table_stride, 0);
  }
  const size_t from = keep_tokens ? o_slots : 0;
  CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(b.dev.get()) + from, h + from, used - from,
                             cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaEventRecord(b.uploaded, stream));
  const char* d = static_cast<const char*>(b.dev.get());
  b.slots = reinterpret_cast<const int64_t*>(d + o_slots);
  b.tokens = reinterpret_cast<const int32_t*>(d + o_tokens);
  b.positions = reinterpret_cast<const int32_t*>(d + o_pos);
  b.logit_rows = reinterpret_cast<const int32_t*>(d + o_logit);
  b.row_seq = reinterpret_cast<const int32_t*>(d + o_rowseq);
  b.seq_info = reinterpret_cast<const int32_t*>(d + o_info);
  b.block_tables = reinterpret_cast<const int32_t*>(d + o_tables);
  b.n_rows = n_rows;
  b.all_decode = !meta.seqs.empty();
  for (const AttentionSeq& s : meta.seqs) b.all_decode = b.all_decode && s.q_len == 1;
  b.host = meta;
}

}  // namespace petrel::kernels::cuda
