// Linear-probing hash tables. Slots store a 32-bit hash fragment next to the key index so a
// probe rarely touches the key arena; deletion is never needed (tables are built once, or
// cleared as a whole for the BPE cache), which keeps linear probing simple.
#include "tokenizer/string_map.h"

#include <algorithm>

namespace petrel::tokenizer {

namespace {
// Smallest power of two that holds n keys at a load factor of at most 3/4 (linear probing stays
// within a cache line or two; a lower load factor costs page faults at load for little gain).
size_t TableSize(size_t n) {
  size_t cap = 16;
  while (cap * 3 < n * 4) cap <<= 1;
  return cap;
}
}  // namespace

void StringIdMap::Reserve(size_t n) {
  if (TableSize(n) <= slots_.size()) return;
  offsets_.reserve(n + 1);
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(TableSize(n), Slot{});
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.key == 0) continue;
    size_t i = HashBytes(Key(s.key)) & mask;
    while (slots_[i].key != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void StringIdMap::Clear() {
  arena_.clear();
  offsets_.assign(1, 0);
  std::fill(slots_.begin(), slots_.end(), Slot{});
  n_keys_ = 0;
}

void StringIdMap::Grow() { Reserve(slots_.empty() ? 8 : slots_.size() * 2); }

// Probes to the first empty slot, checking for an existing equal key on the way.
bool StringIdMap::Insert(std::string_view key, int32_t id) {
  if (4 * (n_keys_ + 1) > 3 * slots_.size()) Grow();
  const uint64_t h = HashBytes(key);
  const size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  for (;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.key == 0) break;
    if (s.hash == static_cast<uint32_t>(h) && Key(s.key) == key) return false;
  }
  arena_.append(key);
  offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  slots_[i] = Slot{static_cast<uint32_t>(h), static_cast<uint32_t>(offsets_.size() - 1), id};
  ++n_keys_;
  return true;
}

int32_t StringIdMap::Find(std::string_view key) const {
  if (slots_.empty()) return -1;
  const uint64_t h = HashBytes(key);
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.key == 0) return -1;
    if (s.hash == static_cast<uint32_t>(h) && Key(s.key) == key) return s.id;
  }
}

void PairMap::Reserve(size_t n) {
  if (TableSize(n) <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(TableSize(n), Slot{});
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = Mix(s.key) & mask;
    while (slots_[i].key != kEmpty) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void PairMap::Grow() { Reserve(slots_.empty() ? 8 : slots_.size() * 2); }

bool PairMap::Insert(uint64_t key, uint64_t value) {
  if (4 * (n_ + 1) > 3 * slots_.size()) Grow();
  const size_t mask = slots_.size() - 1;
  size_t i = Mix(key) & mask;
  for (; slots_[i].key != kEmpty; i = (i + 1) & mask) {
    if (slots_[i].key == key) return false;
  }
  slots_[i] = Slot{key, value};
  ++n_;
  return true;
}

}  // namespace petrel::tokenizer
