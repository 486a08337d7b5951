// Port interfaces: the only way the core touches hardware. Each port is a narrow seam (MCUboot's flash_area_*
// style): no heap, caller-owned memory, no exceptions. Implementations live in device/ports/<platform>/.
//
// The interfaces have protected non-virtual destructors: a virtual destructor would make the compiler emit a
// deleting destructor that references ::operator delete, and the core must not link the heap.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/config.h"
#include "tinyfleet/status.h"

namespace tinyfleet {

// Flash areas the core addresses. Each is an independently erasable range with its own geometry.
enum class FlashArea : uint8_t {
  Bank0 = 0,     // image bank 0 (holds a bundle byte for byte, from offset 0)
  Bank1 = 1,     // image bank 1
  Meta0 = 2,     // metadata copy 0 (at least one sector)
  Meta1 = 3,     // metadata copy 1 (at least one sector, separate from Meta0)
  Scratch = 4,   // agent's persistent progress (download bitmap); size 0 if the platform has none
};
constexpr uint8_t kFlashAreaCount = 5;

constexpr FlashArea bank_area(uint8_t bank) { return bank == 0 ? FlashArea::Bank0 : FlashArea::Bank1; }

struct FlashGeometry {
  uint32_t size = 0;         // bytes in the area; 0 = the area does not exist
  uint32_t sector_size = 0;  // erase unit (bytes); size is a multiple of it
  uint32_t write_align = 1;  // write granularity: offset and length of every write are multiples of it
  uint8_t erased_value = 0xFF;
};

class Flash {
 public:
  virtual FlashGeometry geometry(FlashArea area) const = 0;
  virtual Status read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) = 0;
  // NOR rules: every target byte must be erased (else FlashNotErased); offset/len aligned to write_align.
  virtual Status write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) = 0;
  // offset and len are multiples of sector_size.
  virtual Status erase(FlashArea area, uint32_t offset, size_t len) = 0;

 protected:
  ~Flash() = default;
};

// Opaque, caller-owned SHA-256 context storage; the port places its own context inside.
struct alignas(8) Sha256Context {
  uint8_t opaque[TINYFLEET_SHA256_CTX_SIZE];
};

class Crypto {
 public:
  virtual void sha256_start(Sha256Context& ctx) = 0;
  virtual void sha256_update(Sha256Context& ctx, const uint8_t* data, size_t len) = 0;
  virtual void sha256_finish(Sha256Context& ctx, uint8_t out[32]) = 0;
  // Ok, BadSignature (does not verify or malformed signature), or CryptoError (key unusable).
  // pubkey_der: DER SubjectPublicKeyInfo of a P-256 key; sig_der: DER ECDSA-Sig-Value.
  // Ok only for the signature's one encoding: strict DER and low s, s <= n / 2 (docs/bundle-format.md,
  // "Signature block"); the port checks it because it owns the DER and the curve (the core treats the
  // signature as opaque bytes). host::canonical_low_s_der is that check for the mbedTLS port.
  virtual Status ecdsa_p256_verify(const uint8_t* pubkey_der, size_t pubkey_len, const uint8_t digest[32],
                                   const uint8_t* sig_der, size_t sig_len) = 0;

 protected:
  ~Crypto() = default;
};

class Power {
 public:
  virtual uint8_t battery_pct() = 0;  // 0..100
  virtual void request_reboot() = 0;  // the platform reboots after the current event returns

 protected:
  ~Power() = default;
};

class Clock {
 public:
  virtual uint64_t unix_seconds() = 0;   // wall clock (expiry checks); 0 if unknown
  virtual uint32_t monotonic_ms() = 0;   // wraps; differences only

 protected:
  ~Clock() = default;
};

struct InferenceResult {
  uint32_t latency_us = 0;
  uint32_t arena_high_water = 0;  // bytes of the tensor arena used
};

class Inference {
 public:
  // Runs the installed model on one input tensor, writing exactly output_len bytes.
  virtual Status run(const uint8_t* input, size_t input_len, uint8_t* output, size_t output_len,
                     InferenceResult& result) = 0;

 protected:
  ~Inference() = default;
};

// SHA-256 of a byte range in one call, through the port.
void sha256(Crypto& crypto, const uint8_t* data, size_t len, uint8_t out[32]);

}  // namespace tinyfleet
