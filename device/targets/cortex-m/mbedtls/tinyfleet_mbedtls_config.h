// mbedTLS 2.28 configuration for the Cortex-M images: exactly what the crypto port needs (SHA-256, and
// ECDSA P-256 verification of a DER signature with a DER SubjectPublicKeyInfo key), sized for small RAM.
// mbedTLS allocates bignums and the parsed key through mbedtls_calloc: here that is a static pool
// (memory_buffer_alloc.c over a caller-given array, see mbedtls_pool.h), so the image links no malloc.
#ifndef TINYFLEET_MBEDTLS_CONFIG_H
#define TINYFLEET_MBEDTLS_CONFIG_H

#define MBEDTLS_HAVE_ASM
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_NO_UDBL_DIVISION  // no 64-bit division helper in the bignum code

#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_NO_STD_FUNCTIONS  // never reference calloc/free/printf from libc
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
// The pool allocator stops the program on a corrupted block header: trap (HardFault) instead of libc exit().
#define MBEDTLS_PLATFORM_EXIT_MACRO tinyfleet_mbedtls_exit
#ifdef __cplusplus
extern "C"
#endif
    void tinyfleet_mbedtls_exit(int status);

#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_MD_C

#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C

// RAM over speed: one verification on each bundle.
#define MBEDTLS_MPI_WINDOW_SIZE 1
#define MBEDTLS_MPI_MAX_SIZE 32
#define MBEDTLS_ECP_MAX_BITS 256
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
// Verification only: no private-key operation needs the blinding RNG.
#define MBEDTLS_ECP_NO_INTERNAL_RNG

#include "mbedtls/check_config.h"

#endif
