// One update's download, block by block (docs/device-protocol.md, "Blocks"): the update's parsed table,
// which blocks each component has (bits of the progress record's bitmap, numbered component after
// component), the window of block subscriptions in flight, re-downloads after a hash mismatch and how often
// the bitmap is checkpointed. It decides what to fetch and keeps count; the agent subscribes, writes through
// the bank writer and persists the record.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/progress.h"

#ifndef TINYFLEET_BLOCK_WINDOW
#define TINYFLEET_BLOCK_WINDOW 4
#endif

namespace tinyfleet {

class DownloadSession {
 public:
  struct Slot {  // a block subscription in flight
    bool used = false;
    uint8_t component = 0;
    uint32_t block = 0;
  };

  // The update's table (parsed from its signed meta); between updates, scratch for whoever parses a table.
  BundleInfo& info() { return info_; }
  const BundleInfo& info() const { return info_; }

  // Numbers the blocks of every component of info(); false if there are more than TINYFLEET_MAX_BLOCKS.
  // Also forgets the retries of a previous attempt.
  bool plan();
  uint32_t total_blocks() const { return total_blocks_; }

  // --- the block bitmap (the progress record's, passed in) ---
  bool block_done(const uint8_t* bitmap, uint8_t c, uint32_t b) const {
    const uint32_t i = bit(c, b);
    return (bitmap[i / 8] >> (i % 8)) & 1;
  }
  void set_block(uint8_t* bitmap, uint8_t c, uint32_t b, bool done) const {
    const uint32_t i = bit(c, b);
    const uint8_t mask = static_cast<uint8_t>(1u << (i % 8));
    bitmap[i / 8] = static_cast<uint8_t>(done ? bitmap[i / 8] | mask : bitmap[i / 8] & ~mask);
  }
  void set_component(uint8_t* bitmap, uint8_t c, bool done) const;
  bool component_complete(const uint8_t* bitmap, uint8_t c) const;
  uint32_t blocks_present(const uint8_t* bitmap) const;
  // Marks missing every block with a byte in [lo, hi) of the bank (sectors the bank writer wiped).
  void clear_range(uint8_t* bitmap, uint32_t lo, uint32_t hi) const;
  // The component a block message is for if it still misses that block (-1: late, duplicate or not ours).
  int wanted(const uint8_t* bitmap, const uint8_t sha256[32], uint32_t index) const;

  // --- the window of block subscriptions ---
  // Claims a free slot for the first missing block not in flight; nullptr when the window is full or no
  // block is left to ask for.
  const Slot* claim(const uint8_t* bitmap);
  Slot* in_flight(uint8_t c, uint32_t b);
  // Frees every slot, calling unsubscribe(slot) for each one in use first.
  template <typename F>
  void release_all(F&& unsubscribe) {
    for (Slot& s : window_) {
      if (s.used) unsubscribe(s);
      s.used = false;
    }
  }

  // --- retries, checkpoints, counters ---
  // Whether component c may be fetched again after a hash mismatch (counts the retry if so).
  bool retry(uint8_t c, uint8_t max_retries) {
    if (hash_failures_[c] >= max_retries) return false;
    ++hash_failures_[c];
    return true;
  }
  // Counts a written block; true when the bitmap is due to be persisted (every `every` blocks, and
  // whenever a component is complete).
  bool block_written(uint16_t every, bool component_complete) {
    ++blocks_fetched_;
    if (++unsaved_blocks_ < every && !component_complete) return false;
    unsaved_blocks_ = 0;
    return true;
  }
  void block_dropped() { ++bad_blocks_; }
  uint32_t blocks_fetched() const { return blocks_fetched_; }
  uint32_t bad_blocks() const { return bad_blocks_; }

 private:
  uint32_t bit(uint8_t c, uint32_t b) const { return block_base_[c] + b; }

  BundleInfo info_;
  uint32_t block_base_[TINYFLEET_MAX_COMPONENTS];     // set by plan() before any use
  uint8_t hash_failures_[TINYFLEET_MAX_COMPONENTS];  // likewise
  uint32_t total_blocks_ = 0;
  Slot window_[TINYFLEET_BLOCK_WINDOW];
  uint16_t unsaved_blocks_ = 0;
  uint32_t blocks_fetched_ = 0;
  uint32_t bad_blocks_ = 0;
};

}  // namespace tinyfleet
