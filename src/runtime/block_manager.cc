#include "runtime/block_manager.h"

#include "core/error.h"

namespace petrel::runtime {

BlockManager::BlockManager(int64_t n_blocks, int block_size, bool enable_prefix_caching)
    : n_blocks_(n_blocks), block_size_(block_size), caching_(enable_prefix_caching),
      refs_(n_blocks, 0), hash_of_(n_blocks, 0), lru_pos_(n_blocks), in_lru_(n_blocks, 0) {
  free_.reserve(n_blocks);
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back((int32_t)b);
}

uint64_t BlockManager::HashBlock(uint64_t parent, std::span<const int32_t> tokens, uint64_t salt) {
  // FNV-1a over the parent hash, the salt and the token ids; 0 is reserved for "none".
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(parent);
  mix(salt);
  for (int32_t t : tokens) mix((uint64_t)(uint32_t)t);
  return h == 0 ? 1 : h;
}

int BlockManager::MatchPrefix(std::span<const uint64_t> hashes, std::vector<int32_t>& blocks) {
  if (!caching_) return 0;
  int n = 0;
  for (uint64_t h : hashes) {
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    const int32_t b = it->second;
    if (in_lru_[b]) {
      evictable_.erase(lru_pos_[b]);
      in_lru_[b] = 0;
    }
    refs_[b]++;
    blocks.push_back(b);
    ++n;
  }
  queries_ += (int64_t)hashes.size() * block_size_;
  hits_ += (int64_t)n * block_size_;
  return n;
}

int32_t BlockManager::Allocate() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!evictable_.empty()) {
    b = evictable_.front();
    evictable_.pop_front();
    in_lru_[b] = 0;
    by_hash_.erase(hash_of_[b]);
    hash_of_[b] = 0;
  } else {
    return -1;
  }
  refs_[b] = 1;
  return b;
}

void BlockManager::Publish(int32_t block, uint64_t hash) {
  if (!caching_ || hash_of_[block] != 0) return;
  if (by_hash_.count(hash)) return;  // an identical block is already cached; keep that one
  by_hash_[hash] = block;
  hash_of_[block] = hash;
}

void BlockManager::Release(int32_t block) {
  PETREL_CHECK(refs_[block] > 0) << "double free of KV block " << block;
  if (--refs_[block] > 0) return;
  if (hash_of_[block] != 0) {
    evictable_.push_back(block);
    lru_pos_[block] = std::prev(evictable_.end());
    in_lru_[block] = 1;
  } else {
    free_.push_back(block);
  }
}

}  // namespace petrel::runtime
