#include "mbedtls_crypto.h"

#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include <cstring>

// The key pair's curve: a public field in 2.28, a private one (MBEDTLS_PRIVATE) in 3.x.
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define TINYFLEET_EC_GROUP_ID(kp) ((kp)->MBEDTLS_PRIVATE(grp).id)
#else
#define TINYFLEET_EC_GROUP_ID(kp) ((kp)->grp.id)
#endif

namespace tinyfleet::host {

namespace {

// floor(n / 2) for n the order of P-256's base point, big-endian.
constexpr uint8_t kHalfOrder[32] = {0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF,
                                    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B,
                                    0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8};

// A minimal DER INTEGER at `p` (before `end`), non-negative: its magnitude (leading sign zero stripped) in
// [value, value + n). False if anything is not in its one DER form.
bool der_uint(const uint8_t*& p, const uint8_t* end, const uint8_t*& value, size_t& n) {
  if (end - p < 3 || p[0] != 0x02 || p[1] < 1 || p[1] > 33 || p[1] > end - p - 2) return false;
  n = p[1];
  value = p + 2;
  p += 2 + n;
  if (value[0] & 0x80) return false;  // negative
  if (value[0] == 0 && n > 1) {
    if ((value[1] & 0x80) == 0) return false;  // a leading zero the sign does not need
    ++value;
    --n;
  }
  return n <= 32;
}

}  // namespace

bool canonical_low_s_der(const uint8_t* sig, size_t len) {
  if (len < 8 || len > 72 || sig[0] != 0x30 || sig[1] != len - 2) return false;  // short-form length only
  const uint8_t* p = sig + 2;
  const uint8_t* end = sig + len;
  const uint8_t* r = nullptr;
  const uint8_t* s = nullptr;
  size_t r_len = 0, s_len = 0;
  if (!der_uint(p, end, r, r_len) || !der_uint(p, end, s, s_len) || p != end) return false;
  return s_len < 32 || std::memcmp(s, kHalfOrder, 32) <= 0;
}

static_assert(sizeof(mbedtls_sha256_context) <= TINYFLEET_SHA256_CTX_SIZE,
              "TINYFLEET_SHA256_CTX_SIZE is too small for mbedtls_sha256_context");
static_assert(alignof(mbedtls_sha256_context) <= alignof(Sha256Context), "Sha256Context alignment");

static mbedtls_sha256_context* ctx_of(Sha256Context& ctx) {
  return reinterpret_cast<mbedtls_sha256_context*>(ctx.opaque);
}

// mbedTLS 3.x renamed the *_ret functions to the plain names (and removed the old void ones).
void MbedtlsCrypto::sha256_start(Sha256Context& ctx) {
  mbedtls_sha256_init(ctx_of(ctx));
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_sha256_starts(ctx_of(ctx), 0);
#else
  mbedtls_sha256_starts_ret(ctx_of(ctx), 0);
#endif
}

void MbedtlsCrypto::sha256_update(Sha256Context& ctx, const uint8_t* data, size_t len) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_sha256_update(ctx_of(ctx), data, len);
#else
  mbedtls_sha256_update_ret(ctx_of(ctx), data, len);
#endif
}

void MbedtlsCrypto::sha256_finish(Sha256Context& ctx, uint8_t out[32]) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_sha256_finish(ctx_of(ctx), out);
#else
  mbedtls_sha256_finish_ret(ctx_of(ctx), out);
#endif
  mbedtls_sha256_free(ctx_of(ctx));
}

Status MbedtlsCrypto::ecdsa_p256_verify(const uint8_t* pubkey_der, size_t pubkey_len, const uint8_t digest[32],
                                        const uint8_t* sig_der, size_t sig_len) {
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  Status result = Status::CryptoError;
  if (!canonical_low_s_der(sig_der, sig_len)) {
    result = Status::BadSignature;
  } else if (mbedtls_pk_parse_public_key(&pk, pubkey_der, pubkey_len) == 0 &&
      mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY && mbedtls_pk_get_bitlen(&pk) == 256) {
    if (TINYFLEET_EC_GROUP_ID(mbedtls_pk_ec(pk)) == MBEDTLS_ECP_DP_SECP256R1) {
      result = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, digest, 32, sig_der, sig_len) == 0 ? Status::Ok
                                                                                          : Status::BadSignature;
    }
  }
  mbedtls_pk_free(&pk);
  return result;
}

}  // namespace tinyfleet::host
