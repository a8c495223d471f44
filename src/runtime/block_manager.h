// KV-cache block accounting: a fixed pool of blocks, reference counts, and automatic prefix
// caching. A full block is identified by the hash of (hash of the previous block, its tokens,
// the adapter), so a block is reusable only after the same prefix [vLLM automatic prefix caching].
// Blocks whose last user finished stay cached (LRU) until their space is needed.
//
// Not thread-safe: owned by the engine thread.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace petrel::runtime {

class BlockManager {
 public:
  BlockManager(int64_t n_blocks, int block_size, bool enable_prefix_caching);

  int block_size() const { return block_size_; }
  int64_t total() const { return n_blocks_; }
  // Blocks that can be handed out now (never used + cached but unreferenced).
  int64_t available() const { return (int64_t)free_.size() + (int64_t)evictable_.size(); }
  // Blocks referenced by at least one sequence.
  int64_t used() const { return n_blocks_ - available(); }

  // Chains the hash of one full block onto its parent's.
  static uint64_t HashBlock(uint64_t parent, std::span<const int32_t> tokens, uint64_t salt);

  // Longest cached prefix of `hashes` (full blocks in order). Takes a reference on each hit block
  // and appends it to `blocks`. Returns the number of blocks reused.
  int MatchPrefix(std::span<const uint64_t> hashes, std::vector<int32_t>& blocks);

  // Takes a fresh block (evicting the least recently freed cached block if needed); -1 if none.
  int32_t Allocate();
  // Records that `block` now holds the full block with this hash (for later reuse).
  void Publish(int32_t block, uint64_t hash);
  // Drops one reference; at zero the block becomes free (or evictable when published).
  void Release(int32_t block);

  int64_t queries() const { return queries_; }
  int64_t hits() const { return hits_; }

 private:
  int64_t n_blocks_;
  int block_size_;
  bool caching_;
  std::vector<int> refs_;
  std::vector<uint64_t> hash_of_;   // 0 = not published
  std::vector<int32_t> free_;       // never published, unreferenced
  std::list<int32_t> evictable_;    // published, unreferenced; front = oldest
  std::vector<std::list<int32_t>::iterator> lru_pos_;
  std::vector<uint8_t> in_lru_;
  std::unordered_map<uint64_t, int32_t> by_hash_;
  int64_t queries_ = 0, hits_ = 0;
};

}  // namespace petrel::runtime
