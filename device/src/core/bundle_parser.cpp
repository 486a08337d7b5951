// Bundle metadata parser. Check order and verdicts mirror the Python reference (src/tinyfleet/bundles/format.py,
// src/tinyfleet/bundles/manifest.py): header fields, then the whole TLV structure, then each manifest value in tag
// order, then the table entry by entry, duplicates, overlaps, missing types, and the signature block.
#include "tinyfleet/bundle_parser.h"

#include <cstddef>
#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

namespace {

constexpr uint16_t kCriticalBit = 0x8000;

enum class Kind : uint8_t { Id, Class, Str255, Str32, U32, U64, Pct, DType, Quant, Shape, Digest };

// A manifest field: its tag, value kind, whether it is required, and where its value goes in Manifest
// (kNotKept: checked only, see Manifest).
struct FieldSpec {
  uint8_t tag;  // every known tag is below 0x100
  Kind kind : 7;
  bool required : 1;
  uint16_t at;
};
static_assert(sizeof(FieldSpec) == 4, "a table row is one word");
constexpr uint16_t kNotKept = 0xFFFF;
constexpr uint16_t kInput = offsetof(Manifest, input);
constexpr uint16_t kOutput = offsetof(Manifest, output);
constexpr uint16_t kScale = offsetof(TensorContract, scale);
constexpr uint16_t kDType = offsetof(TensorContract, dtype);
// store_value() writes a Quant as two words from `scale` on, and a Shape's words from `shape` on.
static_assert(offsetof(TensorContract, zero_point) == kScale + 4, "zero_point follows scale");
static_assert(offsetof(TensorContract, shape) == 0, "shape leads TensorContract");

constexpr FieldSpec kFields[] = {
    {0x01, Kind::Id, true, offsetof(Manifest, bundle_id)},
    {0x02, Kind::Class, true, offsetof(Manifest, hardware_class)},
    {0x03, Kind::Id, false, offsetof(Manifest, device_scope)},
    {0x04, Kind::U32, true, offsetof(Manifest, security_counter)},
    {0x05, Kind::U64, true, offsetof(Manifest, created)},
    {0x06, Kind::U64, false, offsetof(Manifest, expires)},  // and has_expires
    {0x07, Kind::Id, false, kNotKept},
    {0x10, Kind::Str255, false, kNotKept},
    {0x11, Kind::Pct, true, offsetof(Manifest, min_battery_pct)},
    {0x12, Kind::U32, true, offsetof(Manifest, max_latency_ms)},
    {0x13, Kind::U32, true, offsetof(Manifest, peak_ram_bytes)},
    {0x20, Kind::Shape, true, kInput},
    {0x21, Kind::DType, true, kInput + kDType},
    {0x22, Kind::Quant, true, kInput + kScale},
    {0x23, Kind::Shape, true, kOutput},
    {0x24, Kind::DType, true, kOutput + kDType},
    {0x25, Kind::Quant, true, kOutput + kScale},
    {0x26, Kind::Str32, true, offsetof(Manifest, feature_extractor_version)},
    {0x27, Kind::U32, true, offsetof(Manifest, arena_bytes)},
    {0x30, Kind::Digest, false, kNotKept},
    {0x31, Kind::Id, false, kNotKept},
    {0x32, Kind::Digest, true, kNotKept},
};
constexpr size_t kFieldCount = sizeof(kFields) / sizeof(kFields[0]);
constexpr size_t kExpiresField = 5;
static_assert(kFields[kExpiresField].tag == 0x06, "expires");
// Longest value check_value() accepts (Str255).
constexpr uint16_t kMaxFieldLen = 255;

const FieldSpec* find_field(uint16_t tag) {
  for (const auto& f : kFields)
    if (f.tag == tag) return &f;
  return nullptr;
}

bool printable(const uint8_t* v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (v[i] < 0x20 || v[i] > 0x7E) return false;
  return true;
}

bool id_char(uint8_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '+' || c == '-';
}

bool class_char(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

// Value length range of each Kind, in Kind order.
struct LenRange {
  uint8_t min, max;
};
constexpr LenRange kLen[] = {{1, 64}, {1, 32}, {1, 255}, {1, 32}, {4, 4}, {8, 8},
                             {1, 1},  {1, 1},  {8, 8},   {4, 24}, {32, 32}};
static_assert(sizeof(kLen) / sizeof(kLen[0]) == static_cast<size_t>(Kind::Digest) + 1, "a range per Kind");

bool check_value(Kind kind, const uint8_t* v, uint16_t n) {
  const LenRange r = kLen[static_cast<uint8_t>(kind)];
  if (n < r.min || n > r.max) return false;
  switch (kind) {
    case Kind::Pct: return v[0] <= 100;
    case Kind::DType: return v[0] >= 1 && v[0] <= 4;
    // scale > 0 and finite: as bits, sign clear and between +0 and +infinity exclusive.
    case Kind::Quant: return load_u32le(v) - 1u < 0x7F7FFFFFu;
    case Kind::Shape:
      if (n % 4 != 0) return false;
      for (uint16_t i = 0; i < n; i += 4)
        if (load_u32le(v + i) == 0) return false;
      return true;
    case Kind::Id:
      for (uint16_t i = 0; i < n; ++i)
        if (!id_char(v[i])) return false;
      return true;
    case Kind::Class:
      for (uint16_t i = 0; i < n; ++i)
        if (!class_char(v[i])) return false;
      return true;
    case Kind::Str255:
    case Kind::Str32: return printable(v, n);
    default: return true;  // U32, U64, Digest: any bytes
  }
}

// A checked value into its Manifest member at `dst`. Integers are decoded, not copied, so the member holds
// the value on a host of any byte order.
void store_value(uint8_t* dst, Kind kind, const uint8_t* v, uint16_t n) {
  switch (kind) {
    case Kind::Pct:
    case Kind::DType: *dst = v[0]; return;
    case Kind::U64: {
      const uint64_t x = load_u64le(v);
      std::memcpy(dst, &x, 8);
      return;
    }
    case Kind::Shape: dst[offsetof(TensorContract, rank)] = static_cast<uint8_t>(n / 4); [[fallthrough]];
    case Kind::U32:
    case Kind::Quant:  // f32 scale bits, then i32 zero_point
      for (uint16_t i = 0; i < n; i += 4) {
        const uint32_t w = load_u32le(v + i);
        std::memcpy(dst + i, &w, 4);
      }
      return;
    default:  // a string: checked shorter than its member, which parse_manifest_at() zeroed (the NUL)
      std::memcpy(dst, v, n);
  }
}

bool version_field_ok(const uint8_t* raw) {
  // Text up to the first NUL (at least 1 printable byte), then only NULs. As the Python reader, a
  // 32-character field without NUL is accepted.
  size_t n = 0;
  while (n < 32 && raw[n] != 0) ++n;
  if (n == 0 || !printable(raw, n)) return false;
  for (size_t i = n; i < 32; ++i)
    if (raw[i] != 0) return false;
  return true;
}

}  // namespace

uint32_t TensorContract::nbytes() const {
  static constexpr uint8_t kSize[5] = {0, 1, 1, 2, 4};
  uint64_t n = dtype >= 1 && dtype <= 4 ? kSize[dtype] : 0;
  for (uint8_t i = 0; i < rank; ++i) {
    n *= shape[i];
    if (n > 0xFFFFFFFFull) return 0xFFFFFFFFu;
  }
  return static_cast<uint32_t>(n);
}

BundleInfo::BundleInfo() {
  // Every member is zero but the component types (Firmware): one memset, and the member-by-member
  // initialisation before it, which it overwrites, is dropped by the compiler.
  std::memset(static_cast<void*>(this), 0, sizeof *this);
  for (ComponentEntry& c : components) c.type = ComponentType::Firmware;
}

int BundleInfo::find(ComponentType type) const {
  for (uint8_t i = 0; i < component_count; ++i)
    if (components[i].type == type) return i;
  return -1;
}

Status parse_header(const uint8_t* data, size_t len, BundleHeader& out) {
  size_t magic_n = len < 8 ? len : 8;
  if (std::memcmp(data, kBundleMagic, magic_n) != 0) return Status::BadMagic;
  if (len < kHeaderLen) return Status::NeedMoreBytes;
  uint16_t version = load_u16le(data + 8);
  uint16_t header_len = load_u16le(data + 10);
  uint16_t manifest_len = load_u16le(data + 12);
  uint8_t count = data[14];
  uint8_t flags = data[15];
  uint16_t entry_len = load_u16le(data + 16);
  uint16_t sig_len = load_u16le(data + 18);
  uint32_t payload_offset = load_u32le(data + 20);
  uint32_t total_len = load_u32le(data + 24);
  uint32_t reserved = load_u32le(data + 28);
  if (version != 1) return Status::UnsupportedVersion;
  if (header_len != kHeaderLen || entry_len != kEntryLen || sig_len != kSignatureBlockLen)
    return Status::MalformedHeader;
  if (flags != 0 || reserved != 0) return Status::MalformedHeader;
  if (manifest_len == 0 || count == 0) return Status::MalformedHeader;
  if (manifest_len > TINYFLEET_MAX_MANIFEST_LEN) return Status::Oversize;
  if (count > TINYFLEET_MAX_COMPONENTS) return Status::Oversize;
  uint32_t signed_len = kHeaderLen + manifest_len + kEntryLen * count;
  if (payload_offset != align_up(signed_len + kSignatureBlockLen, 16)) return Status::MalformedHeader;
  if (total_len > TINYFLEET_MAX_TOTAL_LEN) return Status::Oversize;
  if (total_len < payload_offset) return Status::OutOfRange;
  out.manifest_len = manifest_len;
  out.component_count = count;
  out.payload_offset = payload_offset;
  out.total_len = total_len;
  out.signed_len = signed_len;
  return Status::Ok;
}

namespace {

// The manifest's [base, base + len) of a prefix source.
Status parse_manifest_at(PrefixSource& src, uint32_t base, size_t len, Manifest& out) {
  const uint8_t* p = nullptr;
  Status s = Status::Ok;
  // Pass 1: TLV structure only (bounds, strictly ascending tags).
  size_t pos = 0;
  int32_t last = -1;
  while (pos < len) {
    if (len - pos < 4) return Status::MalformedManifest;
    if ((s = src.view(static_cast<uint32_t>(base + pos), 4, p)) != Status::Ok) return s;
    uint16_t tag = load_u16le(p);
    uint16_t n = load_u16le(p + 2);
    pos += 4;
    if (n > len - pos) return Status::MalformedManifest;
    if (static_cast<int32_t>(tag) <= last) return Status::MalformedManifest;
    pos += n;
    last = tag;
  }
  // Pass 2: each value in tag order, unknown critical tags, then the required ones, then expires > created.
  // Every Manifest member defaults to zero: one memset (reset_in_place() zeroes, then zeroes members again).
  std::memset(static_cast<void*>(&out), 0, sizeof out);
  bool seen[kFieldCount] = {};
  for (pos = 0; pos < len;) {
    if ((s = src.view(static_cast<uint32_t>(base + pos), 4, p)) != Status::Ok) return s;
    uint16_t tag = load_u16le(p);
    uint16_t n = load_u16le(p + 2);
    const uint32_t value_at = static_cast<uint32_t>(base + pos + 4);
    pos += 4u + n;
    if (n > TINYFLEET_MAX_MANIFEST_LEN - 4) return Status::MalformedManifest;
    const FieldSpec* f = find_field(tag);
    if (f == nullptr) {
      if (tag & kCriticalBit) return Status::MalformedManifest;
      continue;  // unknown non-critical: skipped
    }
    // No known field is longer (check_value would refuse it): the value then fits a prefix window.
    if (n > kMaxFieldLen) return Status::MalformedManifest;
    if ((s = src.view(value_at, n, p)) != Status::Ok) return s;
    if (!check_value(f->kind, p, n)) return Status::MalformedManifest;
    seen[f - kFields] = true;
    if (f->at != kNotKept) store_value(reinterpret_cast<uint8_t*>(&out) + f->at, f->kind, p, n);
    if (f == &kFields[kExpiresField]) out.has_expires = true;
  }
  for (size_t i = 0; i < kFieldCount; ++i)
    if (kFields[i].required && !seen[i]) return Status::MalformedManifest;
  if (out.has_expires && out.expires <= out.created) return Status::MalformedManifest;
  return Status::Ok;
}

}  // namespace

Status PrefixSource::view(uint32_t offset, uint32_t len, const uint8_t*& out) {
  if (flash_ == nullptr) {
    out = data_ + offset;
    return Status::Ok;
  }
  if (len > window_len_) return Status::BufferTooSmall;
  out = window_;
  return flash_->read(area_, offset, window_, len);
}

Status parse_manifest(const uint8_t* data, size_t len, Manifest& out) {
  PrefixSource src(data);
  return parse_manifest_at(src, 0, len, out);
}

Status parse_prefix(const uint8_t* data, size_t len, BundleInfo& out) {
  PrefixSource src(data);
  return parse_prefix(src, len, out);
}

namespace {

constexpr uint8_t kAllTypes = ((1u << (kComponentTypeCount + 1)) - 1) & ~1u;  // bits 1..5

// One component table entry, checked against the header.
Status parse_entry(const uint8_t* e, const BundleHeader& h, ComponentEntry& c) {
  if (e[0] < 1 || e[0] > kComponentTypeCount) return Status::MalformedTable;
  if (e[1] != 0 || load_u16le(e + 2) != 0 || load_u32le(e + 12) != 0) return Status::MalformedTable;
  if (!version_field_ok(e + 16)) return Status::MalformedTable;
  c.type = static_cast<ComponentType>(e[0]);
  c.offset = load_u32le(e + 4);
  c.length = load_u32le(e + 8);
  if (c.offset % 16 != 0 || c.offset < h.payload_offset) return Status::OutOfRange;
  if (c.length == 0 || static_cast<uint64_t>(c.offset) + c.length > h.total_len) return Status::OutOfRange;
  std::memcpy(c.sha256, e + kEntrySha256At, 32);
  return Status::Ok;
}

}  // namespace

Status parse_prefix(PrefixSource& src, size_t len, BundleInfo& out) {
  const uint8_t* p = nullptr;
  const uint32_t head = static_cast<uint32_t>(len < kHeaderLen ? len : kHeaderLen);
  Status s = src.view(0, head, p);
  if (s != Status::Ok) return s;
  s = parse_header(p, head, out.header);
  if (s != Status::Ok) return s;
  const BundleHeader& h = out.header;
  if (len < h.payload_offset) return Status::NeedMoreBytes;
  s = parse_manifest_at(src, kHeaderLen, h.manifest_len, out.manifest);
  if (s != Status::Ok) return s;

  out.component_count = h.component_count;
  const uint32_t table = kHeaderLen + h.manifest_len;
  uint8_t seen = 0;
  bool duplicate = false;  // reported after every entry passed its own checks
  for (uint8_t i = 0; i < h.component_count; ++i) {
    const uint8_t* e = nullptr;
    if ((s = src.view(table + kEntryLen * i, kEntryLen, e)) != Status::Ok) return s;
    if ((s = parse_entry(e, h, out.components[i])) != Status::Ok) return s;
    const uint8_t bit = static_cast<uint8_t>(1u << e[0]);
    duplicate |= (seen & bit) != 0;
    seen = static_cast<uint8_t>(seen | bit);
  }
  if (duplicate) return Status::DuplicateComponent;
  // Payloads are non-empty: they are disjoint exactly when no two of them intersect.
  for (uint8_t i = 0; i < h.component_count; ++i) {
    const ComponentEntry& a = out.components[i];
    for (uint8_t j = 0; j < i; ++j) {
      const ComponentEntry& b = out.components[j];
      if (a.offset < b.end() && b.offset < a.end()) return Status::OverlappingComponents;
    }
  }
  if (seen != kAllTypes) return Status::MissingComponent;

  // The signature block and the padding after it up to payload_offset (at most 96 + 15 bytes).
  const uint32_t sig_to_payloads = h.payload_offset - h.signed_len;
  const uint8_t* sb = nullptr;
  if ((s = src.view(h.signed_len, sig_to_payloads, sb)) != Status::Ok) return s;
  SignatureBlock& sig = out.signature;
  sig.algorithm = sb[0];
  sig.signature_len = load_u16le(sb + 2);
  if (sig.algorithm != 1 || sb[1] != 0 || sig.signature_len < 8 || sig.signature_len > kMaxSignatureLen)
    return Status::BadSignature;
  // The signature's zero padding, the reserved bytes after it and the padding up to payload_offset: zero,
  // so that no unsigned byte can give the same bundle another digest.
  for (uint32_t i = 12u + sig.signature_len; i < sig_to_payloads; ++i)
    if (sb[i] != 0) return Status::BadSignature;
  std::memcpy(sig.key_id, sb + 4, kKeyIdLen);
  std::memcpy(sig.signature, sb + 12, kMaxSignatureLen);
  return Status::Ok;
}

void compute_key_id(Crypto& crypto, TrustedKey& key) {
  uint8_t digest[32];
  sha256(crypto, key.der, key.der_len, digest);
  std::memcpy(key.key_id, digest, kKeyIdLen);
}

Status check_signature(const BundleInfo& info, const uint8_t* prefix, Crypto& crypto, const VerifyPolicy& policy) {
  const TrustedKey* key = nullptr;
  for (size_t i = 0; i < policy.key_count; ++i) {
    if (std::memcmp(policy.keys[i].key_id, info.signature.key_id, kKeyIdLen) == 0) {
      key = &policy.keys[i];
      break;
    }
  }
  if (key == nullptr) return Status::UnknownKeyId;
  uint8_t digest[32];
  sha256(crypto, prefix, info.header.signed_len, digest);
  Status s = crypto.ecdsa_p256_verify(key->der, key->der_len, digest, info.signature.signature,
                                      info.signature.signature_len);
  return s == Status::Ok ? Status::Ok : Status::BadSignature;
}

Status check_policy(const BundleInfo& info, const VerifyPolicy& policy) {
  const Manifest& m = info.manifest;
  if (policy.hardware_class != nullptr && std::strcmp(m.hardware_class, policy.hardware_class) != 0)
    return Status::WrongHardwareClass;
  if (m.device_scope[0] != '\0' && policy.device_id != nullptr && std::strcmp(m.device_scope, policy.device_id) != 0)
    return Status::WrongDevice;
  if (m.has_expires && policy.now >= m.expires) return Status::Expired;
  if (m.security_counter < policy.min_counter) return Status::CounterTooLow;
  return Status::Ok;
}

}  // namespace tinyfleet
