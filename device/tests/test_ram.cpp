// The core's RAM, pinned to the byte per configuration (as TFLM's memory_arena_threshold_test): the core
// has no static or heap memory of its own, so its RAM is exactly the objects the application places
// (statically) for it. Growth must show up here as a deliberate change.
//
// This file is built twice: in agent_tests with the default configuration (config.h), and as ram_pin_small
// with TINYFLEET_RAM_CONFIG_SMALL and the small configuration's macros (see CMakeLists.txt).
// The pinned numbers are for the host build (LP64: 8-byte pointers).
#include <gtest/gtest.h>

#include <cstdio>

#include "tinyfleet/bank_writer.h"
#include "tinyfleet/boot.h"
#include "tinyfleet/metadata.h"
#include "tinyfleet/stream_verifier.h"

using namespace tinyfleet;

namespace {

struct Pinned {
  const char* name;
  size_t stream_verifier, bank_writer, boot_selector, metadata_store, bundle_info, metadata_record;
};

#if defined(TINYFLEET_RAM_CONFIG_SMALL)
static_assert(TINYFLEET_PREFIX_BUFFER_SIZE == 1024 && TINYFLEET_FLASH_CHUNK_SIZE == 64 &&
                  TINYFLEET_MAX_COMPONENTS == 5 && TINYFLEET_MAX_WRITE_ALIGN == 8,
              "ram_pin_small must be built with the small configuration");
constexpr Pinned kPinned = {"small", 1832, 248, 928, 8, 640, 92};
#else
static_assert(TINYFLEET_PREFIX_BUFFER_SIZE == 4864 && TINYFLEET_FLASH_CHUNK_SIZE == 256 &&
                  TINYFLEET_MAX_COMPONENTS == 8 && TINYFLEET_MAX_WRITE_ALIGN == 16 &&
                  TINYFLEET_SHA256_CTX_SIZE == 128,
              "agent_tests pins the default configuration");
constexpr Pinned kPinned = {"default", 5800, 440, 1056, 8, 768, 92};
#endif

static_assert(sizeof(void*) == 8, "pinned sizes are those of the LP64 host build");

}  // namespace

TEST(StaticRam, CoreObjectsArePinnedToTheByte) {
  EXPECT_EQ(sizeof(StreamVerifier), kPinned.stream_verifier);
  EXPECT_EQ(sizeof(BankWriter), kPinned.bank_writer);
  EXPECT_EQ(sizeof(BootSelector), kPinned.boot_selector);
  EXPECT_EQ(sizeof(MetadataStore), kPinned.metadata_store);
  EXPECT_EQ(sizeof(BundleInfo), kPinned.bundle_info);
  EXPECT_EQ(sizeof(MetadataRecord), kPinned.metadata_record);
  std::printf("[ram] %s configuration: StreamVerifier %zu, BankWriter %zu, BootSelector %zu, MetadataStore %zu "
              "bytes (update path total %zu)\n",
              kPinned.name, sizeof(StreamVerifier), sizeof(BankWriter), sizeof(BootSelector), sizeof(MetadataStore),
              sizeof(StreamVerifier) + sizeof(BankWriter) + sizeof(BootSelector));
}

TEST(StaticRam, BuffersScaleWithTheConfiguration) {
  // The streaming verifier gathers the prefix in a buffer; the boot selector reads it from flash through a
  // window, so its size does not follow the prefix buffer's.
  EXPECT_GE(sizeof(StreamVerifier), static_cast<size_t>(TINYFLEET_PREFIX_BUFFER_SIZE) + sizeof(BundleInfo));
  EXPECT_GE(sizeof(BootSelector), kPrefixWindowLen + sizeof(BundleInfo));
  EXPECT_LT(sizeof(BootSelector), kPrefixWindowLen + sizeof(BundleInfo) + 64);
  EXPECT_GE(sizeof(BankWriter), static_cast<size_t>(TINYFLEET_FLASH_CHUNK_SIZE) + sizeof(Sha256Context));
}
