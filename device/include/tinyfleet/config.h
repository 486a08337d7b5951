// Compile-time configuration with defaults. Define any of these before including a tinyfleet header
// (or with -D, or in "tinyfleet_user_config.h" on the include path) to override them.
// Every buffer the core owns is sized here.
#pragma once

#if defined(__has_include)
#if __has_include("tinyfleet_user_config.h")
#include "tinyfleet_user_config.h"
#endif
#endif

// Bundle format v1 limits (docs/bundle-format.md). A device may lower the manifest and total limits.
#ifndef TINYFLEET_MAX_MANIFEST_LEN
#define TINYFLEET_MAX_MANIFEST_LEN 4096
#endif
#ifndef TINYFLEET_MAX_COMPONENTS
#define TINYFLEET_MAX_COMPONENTS 8
#endif
#ifndef TINYFLEET_MAX_TOTAL_LEN
#define TINYFLEET_MAX_TOTAL_LEN 67108864u
#endif

// Buffer holding the metadata prefix (header + manifest + table + signature block, padded):
// 4864 bytes holds the largest v1 prefix.
#ifndef TINYFLEET_PREFIX_BUFFER_SIZE
#define TINYFLEET_PREFIX_BUFFER_SIZE 4864
#endif

// Trusted signing keys a verifier holds at once (key rotation needs at least 2).
#ifndef TINYFLEET_MAX_TRUSTED_KEYS
#define TINYFLEET_MAX_TRUSTED_KEYS 4
#endif
// DER SubjectPublicKeyInfo of a P-256 key is 91 bytes.
#ifndef TINYFLEET_MAX_PUBKEY_DER_LEN
#define TINYFLEET_MAX_PUBKEY_DER_LEN 91
#endif

// Opaque storage for one SHA-256 context of the crypto port (mbedTLS needs about 112 bytes).
#ifndef TINYFLEET_SHA256_CTX_SIZE
#define TINYFLEET_SHA256_CTX_SIZE 128
#endif

// Largest flash write granularity the core supports (bytes; a power of two dividing 16).
#ifndef TINYFLEET_MAX_WRITE_ALIGN
#define TINYFLEET_MAX_WRITE_ALIGN 16
#endif

// Chunk used to read flash while hashing or copying a component (multiple of 16).
#ifndef TINYFLEET_FLASH_CHUNK_SIZE
#define TINYFLEET_FLASH_CHUNK_SIZE 256
#endif

// Boots a trial image gets to confirm before boot selection reverts it.
#ifndef TINYFLEET_MAX_TRIAL_BOOTS
#define TINYFLEET_MAX_TRIAL_BOOTS 3
#endif
