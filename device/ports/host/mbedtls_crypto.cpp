#include "mbedtls_crypto.h"

#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

// The key pair's curve: a public field in 2.28, a private one (MBEDTLS_PRIVATE) in 3.x.
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define TINYFLEET_EC_GROUP_ID(kp) ((kp)->MBEDTLS_PRIVATE(grp).id)
#else
#define TINYFLEET_EC_GROUP_ID(kp) ((kp)->grp.id)
#endif

namespace tinyfleet::host {

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
  if (mbedtls_pk_parse_public_key(&pk, pubkey_der, pubkey_len) == 0 &&
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
