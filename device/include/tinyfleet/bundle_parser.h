// Bundle metadata parser (docs/bundle-format.md): header, manifest TLV, component table, signature block,
// then trust (signature) and policy. Pure functions over a caller-owned buffer; no heap, no I/O.
// The check order and the verdict for each rule are those of the Python reference (tinyfleet.bundles).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/config.h"
#include "tinyfleet/ports.h"
#include "tinyfleet/status.h"

namespace tinyfleet {

constexpr uint8_t kBundleMagic[8] = {0x89, 0x54, 0x46, 0x42, 0x0D, 0x0A, 0x1A, 0x0A};
constexpr uint32_t kHeaderLen = 32;
constexpr uint32_t kEntryLen = 80;
constexpr uint32_t kEntrySha256At = 48;  // an entry's sha256, from the entry's start
constexpr uint32_t kSignatureBlockLen = 96;
constexpr uint32_t kMaxSignatureLen = 72;
constexpr uint32_t kKeyIdLen = 8;
constexpr uint8_t kComponentTypeCount = 5;

enum class ComponentType : uint8_t {
  Firmware = 1,
  Model = 2,
  Thresholds = 3,
  Calibration = 4,
  HealthVectors = 5,
};

struct BundleHeader {
  uint16_t manifest_len = 0;
  uint8_t component_count = 0;
  uint32_t payload_offset = 0;
  uint32_t total_len = 0;
  uint32_t signed_len = 0;  // T = 32 + manifest_len + 80 * component_count
};

struct TensorContract {
  uint32_t shape[6] = {};
  uint8_t rank = 0;
  uint8_t dtype = 0;  // 1 int8, 2 uint8, 3 int16, 4 float32
  float scale = 0;
  int32_t zero_point = 0;
  uint32_t nbytes() const;  // product of shape times dtype size (saturates at UINT32_MAX)
};

// Strings are NUL-terminated copies of the manifest values (validated ASCII). Every field is parsed and
// checked; the ones only the server and people use (target_environments, rollback_target, the provenance:
// dataset and validation digests, training run id) are not kept: a device reads them from the signed prefix
// in flash if it ever needs them.
struct Manifest {
  char bundle_id[65] = {};
  char hardware_class[33] = {};
  char device_scope[65] = {};  // empty = not scoped
  uint32_t security_counter = 0;
  uint64_t created = 0;
  uint64_t expires = 0;  // 0 = never (has_expires false)
  bool has_expires = false;
  uint8_t min_battery_pct = 0;
  uint32_t max_latency_ms = 0;
  uint32_t peak_ram_bytes = 0;
  TensorContract input;
  TensorContract output;
  char feature_extractor_version[33] = {};
  uint32_t arena_bytes = 0;
};

// The entry's version text is checked (printable, NUL-padded) but not kept: the device names a component by
// its SHA-256.
struct ComponentEntry {
  ComponentType type = ComponentType::Firmware;
  uint32_t offset = 0;
  uint32_t length = 0;
  uint8_t sha256[32] = {};
  uint32_t end() const { return offset + length; }
};

struct SignatureBlock {
  uint8_t algorithm = 0;
  uint16_t signature_len = 0;
  uint8_t key_id[kKeyIdLen] = {};
  uint8_t signature[kMaxSignatureLen] = {};
};

// Everything the metadata prefix [0, payload_offset) says, structurally checked.
struct BundleInfo {
  // Out of line: the image holds one copy of this 768-byte initialisation, not one per user.
  BundleInfo();
  BundleHeader header;
  Manifest manifest;
  uint8_t component_count = 0;
  ComponentEntry components[TINYFLEET_MAX_COMPONENTS];  // in table order
  SignatureBlock signature;
  // Index into `components` of the component of a type, or -1.
  int find(ComponentType type) const;
};

struct TrustedKey {
  const uint8_t* der = nullptr;  // DER SubjectPublicKeyInfo, caller-owned, outlives the verifier
  uint16_t der_len = 0;
  uint8_t key_id[kKeyIdLen] = {};  // fill with compute_key_id()
};

// What the receiving device knows. Null strings skip that check (as the Python None).
struct VerifyPolicy {
  const char* hardware_class = nullptr;
  const char* device_id = nullptr;
  uint32_t min_counter = 0;
  uint64_t now = 0;  // Unix seconds
  const TrustedKey* keys = nullptr;
  size_t key_count = 0;
};

// Header from the first bytes. BadMagic as soon as a received byte differs from the magic;
// NeedMoreBytes if fewer than 32 bytes (and the magic prefix matches).
Status parse_header(const uint8_t* data, size_t len, BundleHeader& out);

// Header + manifest + table + signature block structure from [0, len). NeedMoreBytes if
// len < payload_offset. Bytes after payload_offset are ignored.
Status parse_prefix(const uint8_t* data, size_t len, BundleInfo& out);

// The bytes of a metadata prefix by offset: a buffer holding it whole, or a bank read from flash through a
// window of at least kPrefixWindowLen bytes (boot verification, which does not hold the prefix whole).
// view() points `out` at `len` bytes at `offset`, valid until the next call.
constexpr uint32_t kPrefixWindowLen = 256;
class PrefixSource {
 public:
  explicit PrefixSource(const uint8_t* data) : data_(data) {}
  PrefixSource(Flash& flash, FlashArea area, uint8_t* window, size_t window_len)
      : flash_(&flash), area_(area), window_(window), window_len_(window_len) {}
  Status view(uint32_t offset, uint32_t len, const uint8_t*& out);

 private:
  const uint8_t* data_ = nullptr;
  Flash* flash_ = nullptr;
  FlashArea area_ = FlashArea::Bank0;
  uint8_t* window_ = nullptr;
  size_t window_len_ = 0;
};

// parse_prefix over a source holding [0, len): the same checks in the same order, the same verdicts
// (a source's own error, e.g. a flash read failure, is returned as it is).
Status parse_prefix(PrefixSource& src, size_t len, BundleInfo& out);

// Manifest TLV alone (exposed for the fuzzer and tests).
Status parse_manifest(const uint8_t* data, size_t len, Manifest& out);

// Signature over [0, signed_len) of `prefix` with the key of matching key id: UnknownKeyId or BadSignature.
Status check_signature(const BundleInfo& info, const uint8_t* prefix, Crypto& crypto, const VerifyPolicy& policy);

// WrongHardwareClass, WrongDevice, Expired, CounterTooLow, in that order.
Status check_policy(const BundleInfo& info, const VerifyPolicy& policy);

// key_id = first 8 bytes of SHA-256(der).
void compute_key_id(Crypto& crypto, TrustedKey& key);

}  // namespace tinyfleet
