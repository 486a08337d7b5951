// Writes one bundle into an image bank: the bank holds the bundle file byte for byte from offset 0
// (metadata prefix, then each payload at its own offset). Writes honour the flash write granularity
// (a component's unaligned tail is padded with the erased value); components unchanged since the active
// bank's bundle are copied flash-to-flash and hash-checked instead of downloaded.
// The bank is trusted only after finish() re-reads every component from flash and checks its hash.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/config.h"
#include "tinyfleet/metadata.h"
#include "tinyfleet/ports.h"
#include "tinyfleet/status.h"

namespace tinyfleet {

class BankWriter {
 public:
  BankWriter(Flash& flash, Crypto& crypto) : flash_(flash), crypto_(crypto) {}

  // Start a fresh install into `bank`: checks the bundle fits (BundleTooLarge), erases the sectors
  // covering [0, total_len) and writes the prefix [0, payload_offset). `info` and `prefix` must stay
  // valid (e.g. a StreamVerifier's) until finish().
  Status begin(uint8_t bank, const BundleInfo& info, const uint8_t* prefix);
  // Continue an install after a reboot, without erasing (the caller knows which blocks landed).
  Status resume(uint8_t bank, const BundleInfo& info, const uint8_t* prefix);

  // Payload bytes at bundle offset `offset`, inside one component. offset must be a multiple of the
  // write granularity; len too, unless the write ends exactly at the component's end.
  // If the target bytes are not erased (a write torn by a power cut), the sectors holding them are
  // erased first and [*erased_lo, *erased_hi) reports the bundle range that was wiped (else lo == hi).
  Status write(uint32_t offset, const uint8_t* data, size_t len, uint32_t* erased_lo = nullptr,
               uint32_t* erased_hi = nullptr);

  // Copy component `index` from `src_bank` at `src_offset` (same content, found there by hash), checking
  // the source bytes' SHA-256 while copying: HashMismatch if the source is not what the table says.
  // As write(): if the target bytes are not erased, the sectors holding the component are erased first and
  // [*erased_lo, *erased_hi) reports the bundle range wiped, neighbouring components' bytes included.
  Status copy_component(uint8_t index, uint8_t src_bank, uint32_t src_offset, uint32_t* erased_lo = nullptr,
                        uint32_t* erased_hi = nullptr);

  // SHA-256 of component `index` as stored in the bank: Ok or HashMismatch.
  Status verify_component(uint8_t index);

  // Re-verify the prefix and every component from flash; fill the descriptor for the metadata.
  Status finish(ImageDescriptor& out);

  uint8_t bank() const { return bank_; }

 private:
  friend Status verify_bank_image(Flash& flash, Crypto& crypto, uint8_t bank, const ImageDescriptor& image,
                                  uint8_t* window, size_t window_len, BundleInfo& info);
  // SHA-256 of flash bytes [offset, offset + len) of `area`, read through `chunk`, against `expected`: Ok,
  // HashMismatch or the failed flash operation's status. With `copy_to`, each chunk is also written to its
  // bank from copy_offset on.
  static Status hash_flash(Flash& flash, Crypto& crypto, Sha256Context& ctx, FlashArea area, uint32_t offset,
                           uint32_t len, uint8_t* chunk, size_t chunk_len, const uint8_t expected[32],
                           BankWriter* copy_to, uint32_t copy_offset);
  Status write_aligned(uint32_t offset, const uint8_t* data, size_t len);
  Status ensure_erased(uint32_t offset, size_t len, uint32_t* lo, uint32_t* hi);
  Status component_at(uint32_t offset, size_t len, int& index) const;

  Flash& flash_;
  Crypto& crypto_;
  const BundleInfo* info_ = nullptr;
  const uint8_t* prefix_ = nullptr;
  uint8_t bank_ = 0;
  FlashGeometry geo_;
  Sha256Context sha_;
  uint8_t chunk_[TINYFLEET_FLASH_CHUNK_SIZE];
};

// Find a component with this SHA-256 in an installed image (read from its prefix in flash): its offset
// and length. NotFound if the bank's bundle has no such component. `info` is scratch space.
Status find_component_by_hash(Flash& flash, Crypto& crypto, uint8_t bank, const ImageDescriptor& image,
                              const uint8_t sha256[32], uint32_t& offset, uint32_t& length,
                              uint8_t* prefix_buf, size_t prefix_buf_len, BundleInfo& info);

// Verify an installed image from flash against its descriptor: prefix digest, structure, every payload
// hash. Ok or the first failure. The prefix is hashed and parsed from flash through `window`
// (at least kPrefixWindowLen bytes; BufferTooSmall otherwise), never held whole.
Status verify_bank_image(Flash& flash, Crypto& crypto, uint8_t bank, const ImageDescriptor& image,
                         uint8_t* window, size_t window_len, BundleInfo& info);

}  // namespace tinyfleet
