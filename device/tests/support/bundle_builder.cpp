#include "support/bundle_builder.h"

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include <cstring>
#include <stdexcept>


namespace tftest {

namespace {

void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x));
  v.push_back(static_cast<uint8_t>(x >> 8));
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}
void put64(std::vector<uint8_t>& v, uint64_t x) {
  for (int i = 0; i < 8; ++i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}
void tlv(std::vector<uint8_t>& out, uint16_t tag, const std::vector<uint8_t>& value) {
  put16(out, tag);
  put16(out, static_cast<uint16_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}
std::vector<uint8_t> str(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::vector<uint8_t> u32(uint32_t x) {
  std::vector<uint8_t> v;
  put32(v, x);
  return v;
}
std::vector<uint8_t> u64(uint64_t x) {
  std::vector<uint8_t> v;
  put64(v, x);
  return v;
}
std::vector<uint8_t> sha(const uint8_t* d, size_t n) {
  std::vector<uint8_t> out(32);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_sha256(d, n, out.data(), 0);
#else
  mbedtls_sha256_ret(d, n, out.data(), 0);
#endif
  return out;
}
uint32_t align16(uint32_t x) { return (x + 15) / 16 * 16; }

// Deterministic "entropy" so each seed always gives the same key.
int fixed_entropy(void* ctx, unsigned char* out, size_t len) {
  const std::string& seed = *static_cast<const std::string*>(ctx);
  for (size_t i = 0; i < len; ++i) out[i] = static_cast<unsigned char>(seed[i % seed.size()] + i);
  return 0;
}

}  // namespace

struct TestSigner::Impl {
  std::string seed;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_pk_context pk;
};

TestSigner::TestSigner(const std::string& seed) : impl_(new Impl) {
  impl_->seed = seed.empty() ? std::string("seed") : seed;
  mbedtls_ctr_drbg_init(&impl_->drbg);
  mbedtls_pk_init(&impl_->pk);
  if (mbedtls_ctr_drbg_seed(&impl_->drbg, fixed_entropy, &impl_->seed, nullptr, 0) != 0 ||
      mbedtls_pk_setup(&impl_->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
      mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(impl_->pk), mbedtls_ctr_drbg_random,
                          &impl_->drbg) != 0)
    throw std::runtime_error("test key generation failed");
  unsigned char buf[200];
  int n = mbedtls_pk_write_pubkey_der(&impl_->pk, buf, sizeof buf);
  if (n <= 0) throw std::runtime_error("public key export failed");
  der_.assign(buf + sizeof buf - n, buf + sizeof buf);
}

TestSigner::~TestSigner() {
  mbedtls_pk_free(&impl_->pk);
  mbedtls_ctr_drbg_free(&impl_->drbg);
  delete impl_;
}

std::vector<uint8_t> TestSigner::key_id() const {
  auto d = sha(der_.data(), der_.size());
  d.resize(8);
  return d;
}

namespace {

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define TFTEST_GROUP(kp) ((kp)->MBEDTLS_PRIVATE(grp))
#define TFTEST_SECRET(kp) ((kp)->MBEDTLS_PRIVATE(d))
#else
#define TFTEST_GROUP(kp) ((kp)->grp)
#define TFTEST_SECRET(kp) ((kp)->d)
#endif

// (r, s) as the format's one encoding: low s (n - s when s > n / 2), minimal DER.
std::vector<uint8_t> low_s_der(const mbedtls_ecp_group& grp, mbedtls_mpi& r, mbedtls_mpi& s) {
  mbedtls_mpi half;
  mbedtls_mpi_init(&half);
  if (mbedtls_mpi_copy(&half, &grp.N) != 0 || mbedtls_mpi_shift_r(&half, 1) != 0)
    throw std::runtime_error("low-s: n / 2");
  if (mbedtls_mpi_cmp_mpi(&s, &half) > 0 && mbedtls_mpi_sub_mpi(&s, &grp.N, &s) != 0)
    throw std::runtime_error("low-s: n - s");
  mbedtls_mpi_free(&half);
  unsigned char buf[MBEDTLS_ECDSA_MAX_LEN];
  unsigned char* p = buf + sizeof buf;
  int n = 0, k = 0;
  if ((k = mbedtls_asn1_write_mpi(&p, buf, &s)) < 0 || (n += k, (k = mbedtls_asn1_write_mpi(&p, buf, &r)) < 0) ||
      (n += k, (k = mbedtls_asn1_write_len(&p, buf, static_cast<size_t>(n))) < 0) ||
      (n += k, (k = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0))
    throw std::runtime_error("low-s: DER");
  n += k;
  return std::vector<uint8_t>(p, p + n);
}

}  // namespace

// mbedTLS signs deterministically (RFC 6979): the same bytes give the same signature, as the Python signer.
// About half of its signatures are high-s, which the format refuses: s is replaced by n - s, as
// tinyfleet.bundles.sign does.
std::vector<uint8_t> TestSigner::sign(const uint8_t* data, size_t len) const {
  auto digest = sha(data, len);
  unsigned char sig[MBEDTLS_ECDSA_MAX_LEN];
  size_t sig_len = 0;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  int rc = mbedtls_pk_sign(&impl_->pk, MBEDTLS_MD_SHA256, digest.data(), 32, sig, sizeof sig, &sig_len,
                           mbedtls_ctr_drbg_random, &impl_->drbg);
#else
  int rc = mbedtls_pk_sign(&impl_->pk, MBEDTLS_MD_SHA256, digest.data(), 32, sig, &sig_len,
                           mbedtls_ctr_drbg_random, &impl_->drbg);
#endif
  if (rc != 0) throw std::runtime_error("signing failed");
  mbedtls_mpi r, s;
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  unsigned char* p = sig;
  const unsigned char* end = sig + sig_len;
  size_t seq_len = 0;
  if (mbedtls_asn1_get_tag(&p, end, &seq_len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
      mbedtls_asn1_get_mpi(&p, end, &r) != 0 || mbedtls_asn1_get_mpi(&p, end, &s) != 0)
    throw std::runtime_error("signing: unreadable DER");
  auto out = low_s_der(TFTEST_GROUP(mbedtls_pk_ec(impl_->pk)), r, s);
  mbedtls_mpi_free(&r);
  mbedtls_mpi_free(&s);
  return out;
}

std::vector<uint8_t> TestSigner::sign_with_fresh_nonce(const uint8_t* data, size_t len) const {
  auto digest = sha(data, len);
  mbedtls_ecp_keypair* kp = mbedtls_pk_ec(impl_->pk);
  mbedtls_mpi r, s;
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  if (mbedtls_ecdsa_sign(&TFTEST_GROUP(kp), &r, &s, &TFTEST_SECRET(kp), digest.data(), 32, mbedtls_ctr_drbg_random,
                         &impl_->drbg) != 0)
    throw std::runtime_error("signing failed");
  auto out = low_s_der(TFTEST_GROUP(kp), r, s);
  mbedtls_mpi_free(&r);
  mbedtls_mpi_free(&s);
  return out;
}

std::vector<uint8_t> pattern(size_t len, uint32_t seed) {
  std::vector<uint8_t> v(len);
  uint32_t x = seed * 2654435761u + 12345u;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 16);
  }
  return v;
}

BundleSpec small_spec(uint32_t seed) {
  BundleSpec s;
  s.bundle_id = "test-" + std::to_string(seed);
  s.payloads[0] = pattern(1000 + seed % 7, seed * 5 + 1);
  s.payloads[1] = pattern(700, seed * 5 + 2);
  s.payloads[2] = pattern(48, seed * 5 + 3);
  s.payloads[3] = pattern(44, seed * 5 + 4);
  s.payloads[4] = pattern(100, seed * 5 + 5);
  return s;
}

std::vector<uint8_t> encode_manifest(const BundleSpec& s) {
  std::vector<uint8_t> m;
  std::vector<uint8_t> quant = u32(0x3C000000u);  // 0.0078125f
  auto zp = u32(static_cast<uint32_t>(-3));
  quant.insert(quant.end(), zp.begin(), zp.end());
  tlv(m, 0x0001, str(s.bundle_id));
  tlv(m, 0x0002, str(s.hardware_class));
  if (!s.device_scope.empty()) tlv(m, 0x0003, str(s.device_scope));
  tlv(m, 0x0004, u32(s.security_counter));
  tlv(m, 0x0005, u64(s.created));
  if (s.expires != 0) tlv(m, 0x0006, u64(s.expires));
  tlv(m, 0x0011, {s.min_battery_pct});
  tlv(m, 0x0012, u32(50));
  tlv(m, 0x0013, u32(20000));
  tlv(m, 0x0020, u32(8));
  tlv(m, 0x0021, {1});
  tlv(m, 0x0022, quant);
  tlv(m, 0x0023, u32(4));
  tlv(m, 0x0024, {1});
  tlv(m, 0x0025, quant);
  tlv(m, 0x0026, str(s.feature_extractor));
  tlv(m, 0x0027, u32(8192));
  tlv(m, 0x0032, std::vector<uint8_t>(32, 0xAB));
  return m;
}

std::vector<uint8_t> build_bundle(const BundleSpec& s, const TestSigner* signer) {
  const std::vector<uint8_t> manifest = encode_manifest(s);
  const uint32_t n = 5;
  const uint32_t signed_len = 32 + static_cast<uint32_t>(manifest.size()) + 80 * n;
  const uint32_t poff = align16(signed_len + 96);
  uint32_t offsets[5];
  uint32_t pos = poff;
  for (uint32_t i = 0; i < n; ++i) {
    offsets[i] = pos;
    pos = align16(pos + static_cast<uint32_t>(s.payloads[i].size()));
  }
  const uint32_t total = offsets[n - 1] + static_cast<uint32_t>(s.payloads[n - 1].size());
  std::vector<uint8_t> b = {0x89, 0x54, 0x46, 0x42, 0x0D, 0x0A, 0x1A, 0x0A};
  put16(b, 1);
  put16(b, 32);
  put16(b, static_cast<uint16_t>(manifest.size()));
  b.push_back(static_cast<uint8_t>(n));
  b.push_back(0);
  put16(b, 80);
  put16(b, 96);
  put32(b, poff);
  put32(b, total);
  put32(b, 0);
  b.insert(b.end(), manifest.begin(), manifest.end());
  for (uint32_t i = 0; i < n; ++i) {
    b.push_back(static_cast<uint8_t>(i + 1));
    b.push_back(0);
    put16(b, 0);
    put32(b, offsets[i]);
    put32(b, static_cast<uint32_t>(s.payloads[i].size()));
    put32(b, 0);
    std::vector<uint8_t> ver(32, 0);
    std::memcpy(ver.data(), s.versions[i].data(), s.versions[i].size());
    b.insert(b.end(), ver.begin(), ver.end());
    auto d = sha(s.payloads[i].data(), s.payloads[i].size());
    b.insert(b.end(), d.begin(), d.end());
  }
  b.resize(total, 0);
  for (uint32_t i = 0; i < n; ++i) std::memcpy(b.data() + offsets[i], s.payloads[i].data(), s.payloads[i].size());
  if (signer != nullptr) {
    resign(b, *signer);
  } else {
    b[signed_len] = 1;
    b[signed_len + 2] = 8;  // 8-byte dummy signature: structurally valid, verifies against no key
    for (int i = 0; i < 8; ++i) b[signed_len + 4 + i] = 0xEE;
    for (int i = 0; i < 8; ++i) b[signed_len + 12 + i] = static_cast<uint8_t>(0x30 + i);
  }
  return b;
}

void resign(std::vector<uint8_t>& b, const TestSigner& signer) {
  const uint32_t mlen = b[12] | (b[13] << 8);
  const uint32_t signed_len = 32 + mlen + 80 * b[14];
  auto sig = signer.sign(b.data(), signed_len);
  auto kid = signer.key_id();
  std::memset(b.data() + signed_len, 0, 96);
  b[signed_len] = 1;
  b[signed_len + 2] = static_cast<uint8_t>(sig.size());
  std::memcpy(b.data() + signed_len + 4, kid.data(), 8);
  std::memcpy(b.data() + signed_len + 12, sig.data(), sig.size());
}

}  // namespace tftest

namespace tftest {

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define TFTEST_KP(kp, field) ((kp)->MBEDTLS_PRIVATE(field))
#else
#define TFTEST_KP(kp, field) ((kp)->field)
#endif

std::vector<uint8_t> derive_public_der(const std::string& seed) {
  auto scalar = sha(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  mbedtls_ctr_drbg_context drbg;
  mbedtls_ctr_drbg_init(&drbg);
  std::string entropy = "derive:" + seed;
  std::vector<uint8_t> der;
  if (mbedtls_ctr_drbg_seed(&drbg, fixed_entropy, &entropy, nullptr, 0) == 0 &&
      mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0) {
    mbedtls_ecp_keypair* kp = mbedtls_pk_ec(pk);
    if (mbedtls_ecp_read_key(MBEDTLS_ECP_DP_SECP256R1, kp, scalar.data(), scalar.size()) == 0 &&
        mbedtls_ecp_mul(&TFTEST_KP(kp, grp), &TFTEST_KP(kp, Q), &TFTEST_KP(kp, d), &TFTEST_KP(kp, grp).G,
                        mbedtls_ctr_drbg_random, &drbg) == 0) {
      unsigned char buf[200];
      int n = mbedtls_pk_write_pubkey_der(&pk, buf, sizeof buf);
      if (n > 0) der.assign(buf + sizeof buf - n, buf + sizeof buf);
    }
  }
  mbedtls_pk_free(&pk);
  mbedtls_ctr_drbg_free(&drbg);
  if (der.empty()) throw std::runtime_error("key derivation failed for seed " + seed);
  return der;
}

}  // namespace tftest
