// BPE model. Loading resolves every merge to ids once: (left id, right id) -> (rank, merged
// id), so the merge loop never touches strings. Encoding follows `tokenizers`:
//   merge_word: one symbol per character (vocab token, else byte-fallback tokens, else unk);
//   merge_all:  repeatedly apply the lowest-ranked adjacent pair, leftmost first on ties, using
//               a priority queue and a doubly linked symbol list (O(n log n) per word);
// with the per-word cache in front (results are deterministic, so caching never changes ids).
#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>

#include "tokenizer/json_get.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

namespace {

// Ids above this are refused: real vocabularies are < 1M, and ids size dense tables.
constexpr int64_t kMaxId = (1 << 24) - 1;

// Min-heap order of `tokenizers`' Merge: lowest rank first, then leftmost position.
bool HeapAfter(const BpeScratch::Candidate& a, const BpeScratch::Candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::FromJson(const Json& model, std::string_view json_text,
                                                     const BigMembers& big) {
  const std::string path = "model";
  auto m = std::unique_ptr<BpeModel>(new BpeModel());
  if (!big.has_vocab) return FormatError(path, "missing field \"vocab\"");
  if (!big.has_merges) return FormatError(path, "missing field \"merges\"");

  PETREL_TRY(m->prefix_, GetStringOr(model, "continuing_subword_prefix", path, ""));
  PETREL_TRY(m->suffix_, GetStringOr(model, "end_of_word_suffix", path, ""));
  PETREL_TRY(m->fuse_unk_, GetBoolOr(model, "fuse_unk", path, false));
  PETREL_TRY(m->byte_fallback_, GetBoolOr(model, "byte_fallback", path, false));
  PETREL_TRY(m->ignore_merges_, GetBoolOr(model, "ignore_merges", path, false));
  PETREL_TRY(m->unk_token_, GetStringOr(model, "unk_token", path, ""));
  if (const Json* d = Find(model, "dropout");
      d != nullptr && !(d->is_number() && d->get<double>() == 0.0)) {
    return Unsupported(
        "tokenizer.json: model: BPE dropout is not supported (it makes encoding "
        "random)");
  }

  // Vocabulary: token -> id, straight from the text, in one pass. Tables are sized from a
  // cheap upper bound (every entry has a ':'), not from the text size: pretty-printed files are
  // several times larger than their content, and oversized tables cost page faults.
  std::string_view vocab_text = json_text.substr(big.vocab.begin, big.vocab.end - big.vocab.begin);
  const auto n_entries = static_cast<size_t>(std::count(vocab_text.begin(), vocab_text.end(), ':'));
  m->vocab_.Reserve(n_entries);
  m->vocab_.ReserveArena(vocab_text.size());
  m->id_to_token_.reserve(n_entries);
  PETREL_TRY(ScanVocab(vocab_text, [&](std::string_view token, int64_t id) -> Status {
    if (id < 0 || id > kMaxId) {
      return OutOfRange("tokenizer.json: model.vocab[\"", token, "\"] = ", id,
                        " is out of range [0, ", kMaxId, "]");
    }
    if (!m->vocab_.Insert(token, static_cast<int32_t>(id))) {
      return FormatError("model.vocab", "duplicate token \"", token, "\"");
    }
    if (id >= static_cast<int64_t>(m->id_to_token_.size())) {
      const size_t n = std::max<size_t>(static_cast<size_t>(id) + 1, m->id_to_token_.size() * 2);
      m->id_to_token_.resize(n);
      m->has_id_.resize(n, false);
    }
    if (!m->has_id_[id]) {  // first token wins when two share an id
      m->id_to_token_[id].assign(token);
      m->has_id_[id] = true;
    }
    return OkStatus();
  }));
  // Trim to 1 + the largest id.
  size_t limit = m->has_id_.size();
  while (limit > 0 && !m->has_id_[limit - 1]) --limit;
  m->id_to_token_.resize(limit);
  m->has_id_.resize(limit);

  if (!m->unk_token_.empty()) {
    m->unk_id_ = m->vocab_.Find(m->unk_token_);
    // `tokenizers` only fails when the unk token is needed; so do we (see MergeWord).
  }

  // Merges: resolve both sides and the merged token to ids once, here.
  std::string_view merges_text =
      json_text.substr(big.merges.begin, big.merges.end - big.merges.begin);
  struct Resolved {
    int32_t a, b, merged;
  };
  std::vector<Resolved> resolved;
  int32_t rank = 0;
  std::string joined;
  const size_t prefix_len = m->prefix_.size();
  PETREL_TRY(ScanMerges(merges_text, [&](std::string_view a, std::string_view b) -> Status {
    const int32_t a_id = m->vocab_.Find(a), b_id = m->vocab_.Find(b);
    if (a_id < 0 || b_id < 0) {
      return FormatError("model.merges[" + std::to_string(rank) + "]", "merge token \"",
                         a_id < 0 ? a : b, "\" is not in the vocabulary");
    }
    // The merged token drops the right side's continuing-subword prefix (model.rs).
    joined.assign(a);
    joined.append(
        b.size() >= prefix_len && b.substr(0, prefix_len) == m->prefix_ ? b.substr(prefix_len) : b);
    const int32_t new_id = m->vocab_.Find(joined);
    if (new_id < 0) {
      return FormatError("model.merges[" + std::to_string(rank) + "]", "merged token \"", joined,
                         "\" is not in the vocabulary");
    }
    resolved.push_back({a_id, b_id, new_id});
    ++rank;
    return OkStatus();
  }));
  m->merges_.Reserve(resolved.size());
  for (size_t r = 0; r < resolved.size(); ++r) {
    const uint64_t key =
        (static_cast<uint64_t>(resolved[r].a) << 32) | static_cast<uint32_t>(resolved[r].b);
    // Duplicate merges keep their first (best) rank.
    m->merges_.Insert(key,
                      (static_cast<uint64_t>(r) << 32) | static_cast<uint32_t>(resolved[r].merged));
  }

  // Fast tables for the initial symbols: with no prefix/suffix a character's symbol is just
  // its vocabulary id, so a table indexed by code point replaces a hash lookup per character.
  if (m->prefix_.empty() && m->suffix_.empty()) {
    m->char_ids_.assign(0x10000, -1);
    for (int32_t id = 0; id < m->id_limit(); ++id) {
      if (!m->has_id_[id]) continue;
      const std::string& t = m->id_to_token_[id];
      if (t.empty() || t.size() > 3 || !utf8::IsValid(t)) continue;
      size_t i = 0;
      char32_t c = utf8::Next(t, i);
      if (i == t.size() && c < 0x10000) m->char_ids_[c] = id;
    }
  }
  // byte_fallback tokens are spelled "<0xAB>" (format!("<{b:#04X}>") in `tokenizers`).
  m->has_all_byte_ids_ = true;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m->byte_ids_[b] = m->vocab_.Find(name);
    if (m->byte_ids_[b] < 0) m->has_all_byte_ids_ = false;
  }
  return m;
}

// BPE::tokenize_with_cache: ignore_merges looks the whole word up first; then the cache; then
// the merge algorithm, whose result is cached when the word is short enough.
Status BpeModel::Tokenize(std::string_view word, BpeScratch& s, std::vector<int32_t>* out) const {
  if (word.empty()) return OkStatus();
  if (ignore_merges_) {
    if (int32_t id = vocab_.Find(word); id >= 0) {
      out->push_back(id);
      return OkStatus();
    }
  }
  const bool cacheable = word.size() < kMaxCachedWordLen;
  if (cacheable) {
    int32_t e = s.cache_keys.Find(word);
    if (e >= 0) {
      auto [off, len] = s.cache_entries[e];
      out->insert(out->end(), s.cache_ids.begin() + off, s.cache_ids.begin() + off + len);
      return OkStatus();
    }
  }
  const size_t before = out->size();
  PETREL_TRY(MergeWord(word, s, out));
  if (cacheable) {
    // Bounded: when full the whole cache is dropped (cheap, and keeps memory predictable;
    // a server's working set of words refills it quickly).
    if (s.cache_keys.size() >= kCacheCapacity) {
      s.cache_keys.Clear();
      s.cache_entries.clear();
      s.cache_ids.clear();
    }
    const auto off = static_cast<uint32_t>(s.cache_ids.size());
    s.cache_ids.insert(s.cache_ids.end(), out->begin() + before, out->end());
    s.cache_keys.Insert(word, static_cast<int32_t>(s.cache_entries.size()));
    s.cache_entries.push_back({off, static_cast<uint32_t>(out->size() - before)});
  }
  return OkStatus();
}

Status BpeModel::MergeWord(std::string_view word, BpeScratch& s, std::vector<int32_t>* out) const {
  auto& sym = s.symbols;
  sym.clear();
  auto add = [&sym](int32_t id, uint32_t len) {
    const auto n = static_cast<int32_t>(sym.size());
    sym.push_back({id, n - 1, -1, len});
    if (n > 0) sym[n - 1].next = n;
  };

  // 1. Initial symbols, one per character (merge_word in model.rs): vocabulary token, else
  //    byte-fallback tokens, else unk (fused with a preceding unk when fuse_unk).
  int32_t pending_unk_len = 0;  // > 0 while an unk run is being accumulated
  const bool fast_chars = !char_ids_.empty();
  size_t i = 0;
  while (i < word.size()) {
    const size_t start = i;
    const char32_t c = utf8::Next(word, i);
    const auto byte_len = static_cast<uint32_t>(i - start);
    int32_t id;
    std::string_view piece = word.substr(start, byte_len);
    if (fast_chars) {
      id = c < 0x10000 ? char_ids_[c] : vocab_.Find(piece);
    } else {
      s.buf.clear();
      if (start != 0) s.buf.append(prefix_);
      s.buf.append(piece);
      if (i == word.size()) s.buf.append(suffix_);
      piece = s.buf;
      id = vocab_.Find(piece);
    }
    if (id >= 0) {
      if (pending_unk_len > 0) {
        add(unk_id_, static_cast<uint32_t>(pending_unk_len));
        pending_unk_len = 0;
      }
      add(id, byte_len);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char b : piece) all = all && byte_ids_[static_cast<uint8_t>(b)] >= 0;
      if (all) {
        // `tokenizers` leaves a pending unk in place here and emits it with the next
        // in-vocabulary character; replicate that ordering.
        for (char b : piece) add(byte_ids_[static_cast<uint8_t>(b)], 1);
        continue;
      }
    }
    if (unk_token_.empty()) continue;  // no unk token: the character is dropped
    if (unk_id_ < 0) {
      return InvalidFormat("tokenizer.json: model.unk_token \"", unk_token_,
                           "\" is not in the vocabulary (needed for an unknown character)");
    }
    if (pending_unk_len > 0 && !fuse_unk_) add(unk_id_, static_cast<uint32_t>(pending_unk_len));
    pending_unk_len =
        (pending_unk_len > 0 && fuse_unk_ ? pending_unk_len : 0) + static_cast<int32_t>(byte_len);
  }
  if (pending_unk_len > 0) add(unk_id_, static_cast<uint32_t>(pending_unk_len));

  // 2. Merges, lowest rank first, leftmost among equal ranks (Word::merge_all in word.rs).
  auto& heap = s.heap;
  heap.clear();
  for (size_t k = 0; k + 1 < sym.size(); ++k) {
    if (const uint64_t* mg = FindMerge(sym[k].id, sym[k + 1].id)) {
      heap.push_back({static_cast<int32_t>(*mg >> 32), static_cast<int32_t>(k),
                      static_cast<int32_t>(*mg & 0xFFFFFFFFu)});
    }
  }
  std::make_heap(heap.begin(), heap.end(), HeapAfter);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), HeapAfter);
    const BpeScratch::Candidate top = heap.back();
    heap.pop_back();
    auto& left = sym[top.pos];
    if (left.len == 0 || left.next < 0) continue;  // merged away, or nothing to the right
    const int32_t right_pos = left.next;
    const auto right = sym[right_pos];
    const uint64_t* mg = FindMerge(left.id, right.id);
    if (mg == nullptr || static_cast<int32_t>(*mg & 0xFFFFFFFFu) != top.new_id) continue;  // stale
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    sym[right_pos].len = 0;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    // New candidate pairs with the neighbours.
    if (left.prev >= 0) {
      if (const uint64_t* p = FindMerge(sym[left.prev].id, left.id)) {
        heap.push_back(
            {static_cast<int32_t>(*p >> 32), left.prev, static_cast<int32_t>(*p & 0xFFFFFFFFu)});
        std::push_heap(heap.begin(), heap.end(), HeapAfter);
      }
    }
    if (left.next >= 0) {
      if (const uint64_t* p = FindMerge(left.id, sym[left.next].id)) {
        heap.push_back(
            {static_cast<int32_t>(*p >> 32), top.pos, static_cast<int32_t>(*p & 0xFFFFFFFFu)});
        std::push_heap(heap.begin(), heap.end(), HeapAfter);
      }
    }
  }
  for (int32_t k = sym.empty() ? -1 : 0; k >= 0; k = sym[k].next) out->push_back(sym[k].id);
  return OkStatus();
}

}  // namespace petrel::tokenizer
