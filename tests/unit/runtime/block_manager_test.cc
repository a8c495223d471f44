#include "runtime/block_manager.h"

#include <gtest/gtest.h>

namespace petrel::runtime {
namespace {

TEST(BlockManager, AllocateReleaseAndExhaust) {
  BlockManager m(3, 16, true);
  EXPECT_EQ(m.available(), 3);
  int32_t a = m.Allocate(), b = m.Allocate(), c = m.Allocate();
  EXPECT_GE(a, 0);
  EXPECT_GE(b, 0);
  EXPECT_GE(c, 0);
  EXPECT_EQ(m.Allocate(), -1);
  EXPECT_EQ(m.used(), 3);
  m.Release(b);
  EXPECT_EQ(m.available(), 1);
  EXPECT_EQ(m.Allocate(), b);
}

TEST(BlockManager, PrefixCacheReusesPublishedBlocksUntilEvicted) {
  BlockManager m(2, 4, true);
  std::vector<int32_t> toks = {1, 2, 3, 4, 5, 6, 7, 8};
  uint64_t h0 = BlockManager::HashBlock(0, std::span(toks).subspan(0, 4), 0);
  uint64_t h1 = BlockManager::HashBlock(h0, std::span(toks).subspan(4, 4), 0);
  int32_t b0 = m.Allocate(), b1 = m.Allocate();
  m.Publish(b0, h0);
  m.Publish(b1, h1);
  m.Release(b0);
  m.Release(b1);
  EXPECT_EQ(m.used(), 0);
  std::vector<int32_t> blocks;
  std::vector<uint64_t> hashes = {h0, h1};
  EXPECT_EQ(m.MatchPrefix(hashes, blocks), 2);
  EXPECT_EQ(blocks, (std::vector<int32_t>{b0, b1}));
  EXPECT_EQ(m.hits(), 8);
  m.Release(b0);
  m.Release(b1);
  // A different salt (another adapter) never matches.
  uint64_t other = BlockManager::HashBlock(0, std::span(toks).subspan(0, 4), 7);
  std::vector<int32_t> none;
  std::vector<uint64_t> other_hashes = {other};
  EXPECT_EQ(m.MatchPrefix(other_hashes, none), 0);
  // Allocating evicts the oldest cached block; its hash no longer matches.
  int32_t x = m.Allocate();
  EXPECT_EQ(x, b0);
  std::vector<int32_t> again;
  EXPECT_EQ(m.MatchPrefix(hashes, again), 0);
}

TEST(BlockManager, DisabledCachingNeverMatches) {
  BlockManager m(2, 4, false);
  int32_t b = m.Allocate();
  m.Publish(b, 123);
  m.Release(b);
  std::vector<int32_t> blocks;
  std::vector<uint64_t> hashes = {123};
  EXPECT_EQ(m.MatchPrefix(hashes, blocks), 0);
}

}  // namespace
}  // namespace petrel::runtime
