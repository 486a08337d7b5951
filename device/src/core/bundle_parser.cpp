// Bundle metadata parser. Check order and verdicts mirror the Python reference (bundles/format.py,
// bundles/manifest.py): header fields, then the whole TLV structure, then each manifest value in tag
// order, then the table entry by entry, duplicates, overlaps, missing types, and the signature block.
#include "tinyfleet/bundle_parser.h"

#include <cmath>
#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {

namespace {

constexpr uint16_t kCriticalBit = 0x8000;

enum class Kind : uint8_t { Id, Class, Str255, Str32, U32, U64, Pct, DType, Quant, Shape, Digest };

struct FieldSpec {
  uint16_t tag;
  Kind kind;
  bool required;
};

constexpr FieldSpec kFields[] = {
    {0x0001, Kind::Id, true},      {0x0002, Kind::Class, true},   {0x0003, Kind::Id, false},
    {0x0004, Kind::U32, true},     {0x0005, Kind::U64, true},     {0x0006, Kind::U64, false},
    {0x0007, Kind::Id, false},     {0x0010, Kind::Str255, false}, {0x0011, Kind::Pct, true},
    {0x0012, Kind::U32, true},     {0x0013, Kind::U32, true},     {0x0020, Kind::Shape, true},
    {0x0021, Kind::DType, true},   {0x0022, Kind::Quant, true},   {0x0023, Kind::Shape, true},
    {0x0024, Kind::DType, true},   {0x0025, Kind::Quant, true},   {0x0026, Kind::Str32, true},
    {0x0027, Kind::U32, true},     {0x0030, Kind::Digest, false}, {0x0031, Kind::Id, false},
    {0x0032, Kind::Digest, true},
};
constexpr size_t kFieldCount = sizeof(kFields) / sizeof(kFields[0]);
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

bool check_value(Kind kind, const uint8_t* v, uint16_t n) {
  switch (kind) {
    case Kind::U32: return n == 4;
    case Kind::U64: return n == 8;
    case Kind::Pct: return n == 1 && v[0] <= 100;
    case Kind::DType: return n == 1 && v[0] >= 1 && v[0] <= 4;
    case Kind::Digest: return n == 32;
    case Kind::Quant: {
      if (n != 8) return false;
      uint32_t bits = load_u32le(v);
      float scale;
      std::memcpy(&scale, &bits, 4);
      return std::isfinite(scale) && scale > 0.0f;
    }
    case Kind::Shape: {
      if (n % 4 != 0 || n < 4 || n > 24) return false;
      for (uint16_t i = 0; i < n; i += 4)
        if (load_u32le(v + i) == 0) return false;
      return true;
    }
    case Kind::Id: {
      if (n < 1 || n > 64 || !printable(v, n)) return false;
      for (uint16_t i = 0; i < n; ++i)
        if (!id_char(v[i])) return false;
      return true;
    }
    case Kind::Class: {
      if (n < 1 || n > 32 || !printable(v, n)) return false;
      for (uint16_t i = 0; i < n; ++i)
        if (!class_char(v[i])) return false;
      return true;
    }
    case Kind::Str255: return n >= 1 && n <= 255 && printable(v, n);
    case Kind::Str32: return n >= 1 && n <= 32 && printable(v, n);
  }
  return false;
}

void copy_str(char* dst, size_t cap, const uint8_t* v, uint16_t n) {
  size_t k = n < cap - 1 ? n : cap - 1;
  std::memcpy(dst, v, k);
  dst[k] = '\0';
}

void store_tensor_shape(TensorContract& t, const uint8_t* v, uint16_t n) {
  t.rank = static_cast<uint8_t>(n / 4);
  for (uint8_t i = 0; i < t.rank; ++i) t.shape[i] = load_u32le(v + 4 * i);
}

void store_quant(TensorContract& t, const uint8_t* v) {
  uint32_t bits = load_u32le(v);
  std::memcpy(&t.scale, &bits, 4);
  t.zero_point = static_cast<int32_t>(load_u32le(v + 4));
}

void store_field(Manifest& m, uint16_t tag, const uint8_t* v, uint16_t n) {
  switch (tag) {
    case 0x0001: copy_str(m.bundle_id, sizeof m.bundle_id, v, n); break;
    case 0x0002: copy_str(m.hardware_class, sizeof m.hardware_class, v, n); break;
    case 0x0003: copy_str(m.device_scope, sizeof m.device_scope, v, n); break;
    case 0x0004: m.security_counter = load_u32le(v); break;
    case 0x0005: m.created = load_u64le(v); break;
    case 0x0006: m.expires = load_u64le(v); m.has_expires = true; break;
    case 0x0011: m.min_battery_pct = v[0]; break;
    case 0x0012: m.max_latency_ms = load_u32le(v); break;
    case 0x0013: m.peak_ram_bytes = load_u32le(v); break;
    case 0x0020: store_tensor_shape(m.input, v, n); break;
    case 0x0021: m.input.dtype = v[0]; break;
    case 0x0022: store_quant(m.input, v); break;
    case 0x0023: store_tensor_shape(m.output, v, n); break;
    case 0x0024: m.output.dtype = v[0]; break;
    case 0x0025: store_quant(m.output, v); break;
    case 0x0026: copy_str(m.feature_extractor_version, sizeof m.feature_extractor_version, v, n); break;
    case 0x0027: m.arena_bytes = load_u32le(v); break;
    default: break;  // checked, not kept (see Manifest)
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
  reset_in_place(out);
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
    store_field(out, tag, p, n);
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
  for (uint8_t i = 0; i < h.component_count; ++i) {
    const uint8_t* e = nullptr;
    if ((s = src.view(table + kEntryLen * i, kEntryLen, e)) != Status::Ok) return s;
    ComponentEntry& c = out.components[i];
    if (e[0] < 1 || e[0] > kComponentTypeCount) return Status::MalformedTable;
    if (e[1] != 0 || load_u16le(e + 2) != 0 || load_u32le(e + 12) != 0) return Status::MalformedTable;
    if (!version_field_ok(e + 16)) return Status::MalformedTable;
    c.type = static_cast<ComponentType>(e[0]);
    c.offset = load_u32le(e + 4);
    c.length = load_u32le(e + 8);
    if (c.offset % 16 != 0 || c.offset < h.payload_offset) return Status::OutOfRange;
    if (c.length == 0 || static_cast<uint64_t>(c.offset) + c.length > h.total_len) return Status::OutOfRange;
    std::memcpy(c.sha256, e + 48, 32);
  }
  uint8_t seen = 0;
  for (uint8_t i = 0; i < h.component_count; ++i) {
    uint8_t bit = static_cast<uint8_t>(1u << static_cast<uint8_t>(out.components[i].type));
    if (seen & bit) return Status::DuplicateComponent;
    seen = static_cast<uint8_t>(seen | bit);
  }
  // Overlaps: payloads sorted by offset (insertion sort of at most 8 indices).
  uint8_t order[TINYFLEET_MAX_COMPONENTS];
  for (uint8_t i = 0; i < h.component_count; ++i) {
    uint8_t j = i;
    while (j > 0 && out.components[order[j - 1]].offset > out.components[i].offset) {
      order[j] = order[j - 1];
      --j;
    }
    order[j] = i;
  }
  for (uint8_t i = 1; i < h.component_count; ++i)
    if (out.components[order[i]].offset < out.components[order[i - 1]].end()) return Status::OverlappingComponents;
  for (uint8_t t = 1; t <= kComponentTypeCount; ++t)
    if (!(seen & (1u << t))) return Status::MissingComponent;

  const uint8_t* sb = nullptr;
  if ((s = src.view(h.signed_len, kSignatureBlockLen, sb)) != Status::Ok) return s;
  SignatureBlock& sig = out.signature;
  sig.algorithm = sb[0];
  sig.signature_len = load_u16le(sb + 2);
  if (sig.algorithm != 1) return Status::BadSignature;
  if (sb[1] != 0 || sig.signature_len < 8 || sig.signature_len > kMaxSignatureLen) return Status::BadSignature;
  for (uint32_t i = 84; i < kSignatureBlockLen; ++i)
    if (sb[i] != 0) return Status::BadSignature;
  for (uint32_t i = 12u + sig.signature_len; i < 84; ++i)
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
