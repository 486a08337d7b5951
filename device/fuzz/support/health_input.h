// fuzz_health's input layout: a 25-byte head, then the health-vectors component (TFHV) as stored in a bank.
//   0      mode: bits 0-1 vectors_length = component bytes + {0, -1, +1, +16}; bit 2: the contract's tensor
//          sizes come from bytes 9..16 (else from the TFHV header, as a consistent bundle's do);
//          bit 3: the bundle names a feature extractor this firmware lacks (else vib-window-v1);
//          bits 4-7: the component's offset in the bank, in 16-byte units
//   1..4   u32le max_latency_ms      5..8  u32le peak_ram_bytes
//   9..12  u32le input_bytes        13..16 u32le output_bytes (bit 2 only)
//   17..20 u32le the model's latency_us  21..24 u32le the model's arena high-water
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "flash_emulator.h"
#include "tinyfleet/bytes.h"
#include "tinyfleet/health.h"

namespace fuzzsupport {

constexpr size_t kHealthHeadLen = 25;

struct HealthInput {
  tinyfleet::HealthContract contract;
  uint32_t latency_us = 0;
  uint32_t arena_bytes = 0;
};

inline tinyfleet::host::FlashLayout health_layout() {
  return tinyfleet::host::FlashLayout::dual_bank(4096, 4, 4, 0xFF);  // 16 KiB banks
}

// Writes the component into Bank0 and returns the contract and model behaviour the head describes.
inline HealthInput load_health_input(const uint8_t* data, size_t size, tinyfleet::host::FlashEmulator& flash) {
  using tinyfleet::load_u32le;
  HealthInput in;
  uint8_t head[kHealthHeadLen] = {};
  std::memcpy(head, data, size < kHealthHeadLen ? size : kHealthHeadLen);
  const uint8_t* vectors = data + (size < kHealthHeadLen ? size : kHealthHeadLen);
  const size_t n = size < kHealthHeadLen ? 0 : size - kHealthHeadLen;
  std::vector<uint8_t>& bank = flash.raw(tinyfleet::FlashArea::Bank0);
  const uint32_t offset = 16u * (head[0] >> 4);
  std::memcpy(bank.data() + offset, vectors, n < bank.size() - offset ? n : bank.size() - offset);
  static const int32_t kLengthDelta[] = {0, -1, 1, 16};
  tinyfleet::HealthContract& k = in.contract;
  k.has_vectors = true;
  k.feature_extractor =
      (head[0] & 8) != 0 ? tinyfleet::FeatureExtractorId::Unknown : tinyfleet::FeatureExtractorId::VibWindowV1;
  k.vectors_offset = offset;
  k.vectors_length = static_cast<uint32_t>(static_cast<int64_t>(n) + kLengthDelta[head[0] & 3]);
  k.max_latency_ms = load_u32le(head + 1);
  k.peak_ram_bytes = load_u32le(head + 5);
  const bool own_sizes = (head[0] & 4) != 0;
  k.input_bytes = own_sizes ? load_u32le(head + 9) : (n >= 16 ? load_u32le(vectors + 8) : 0);
  k.output_bytes = own_sizes ? load_u32le(head + 13) : (n >= 16 ? load_u32le(vectors + 12) : 0);
  in.latency_us = load_u32le(head + 17);
  in.arena_bytes = load_u32le(head + 21);
  return in;
}

}  // namespace fuzzsupport
