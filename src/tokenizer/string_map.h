// Flat open-addressing hash tables for the two big lookups of a BPE model: token string -> id
// (150k+ entries) and (left id, right id) -> merge. std::unordered_map costs one allocation per
// node and a pointer chase per probe; these keep all keys in one arena and probe linearly.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace petrel::tokenizer {

// Fast non-cryptographic hash of a short byte string (8 bytes per step, mixed at the end).
inline uint64_t HashBytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xFF51AFD7ED558CCDull);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  h = (h ^ v) * 0xFF51AFD7ED558CCDull;
  h ^= h >> 32;
  return h;
}

// Maps byte strings to int32 ids. Keys are copied into an internal arena. Not thread-safe for
// writes; concurrent Find() calls are fine.
class StringIdMap {
 public:
  void Reserve(size_t n);
  // Reserves room for `bytes` bytes of keys (avoids regrowing the arena while loading).
  void ReserveArena(size_t bytes) { arena_.reserve(bytes); }
  // Inserts key -> id; returns false (and changes nothing) when the key is already present.
  bool Insert(std::string_view key, int32_t id);
  // Returns the id of `key`, or -1 when absent.
  int32_t Find(std::string_view key) const;
  size_t size() const { return n_keys_; }
  // Bytes held by the key arena (lets callers bound a cache's memory).
  size_t arena_bytes() const { return arena_.size(); }
  // Removes every key but keeps the allocated capacity.
  void Clear();

 private:
  struct Slot {
    uint32_t hash = 0;  // low 32 bits of the hash, to skip most string compares
    uint32_t key = 0;   // 1 + index into offsets_; 0 = empty slot
    int32_t id = -1;
  };
  std::string_view Key(uint32_t k) const {
    return std::string_view(arena_.data() + offsets_[k - 1], offsets_[k] - offsets_[k - 1]);
  }
  void Grow();

  std::string arena_;
  std::vector<uint32_t> offsets_ = {0};  // key k occupies arena_[offsets_[k-1], offsets_[k])
  std::vector<Slot> slots_;
  size_t n_keys_ = 0;
};

// Maps a pair of ids (packed in a uint64) to a uint64 payload.
class PairMap {
 public:
  void Reserve(size_t n);
  // Inserts; returns false when the key is already present (the first value is kept).
  bool Insert(uint64_t key, uint64_t value);
  // Returns a pointer to the payload of `key`, or nullptr.
  const uint64_t* Find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    size_t mask = slots_.size() - 1;
    for (size_t i = Mix(key) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return n_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    uint64_t value = 0;
  };
  static uint64_t Mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return k;
  }
  void Grow();

  std::vector<Slot> slots_;
  size_t n_ = 0;
};

}  // namespace petrel::tokenizer
