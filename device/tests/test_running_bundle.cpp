// The running bundle's table alone: loaded from a bank only when the bank's prefix is the image the
// metadata names, offsets and lengths kept, SHA-256s read back from the bank, components read by type.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "flash_emulator.h"
#include "mbedtls_crypto.h"
#include "support/bundle_builder.h"
#include "tinyfleet/running_bundle.h"
#include "update_driver.h"

using namespace tinyfleet;

namespace {

struct Bank {
  host::MbedtlsCrypto crypto;
  host::FlashEmulator flash{host::FlashLayout::dual_bank(512, 16, 8, 0xFF)};
  std::vector<uint8_t> bytes = tftest::build_bundle(tftest::small_spec(7), nullptr);
  tftest::Image image;
  uint8_t scratch[TINYFLEET_PREFIX_BUFFER_SIZE];
  BundleInfo table;
  Bank() {
    EXPECT_EQ(tftest::make_image(bytes.data(), static_cast<uint32_t>(bytes.size()), crypto, image), Status::Ok);
    EXPECT_EQ(tftest::write_image(flash, crypto, 1, image, 256), Status::Ok);
  }
};

}  // namespace

TEST(RunningBundle, KeepsWhereEachComponentLiesAndReadsItsHashBack) {
  Bank b;
  RunningBundle r;
  ASSERT_TRUE(r.load(b.flash, b.crypto, 1, b.image.desc, b.scratch, sizeof b.scratch, b.table));
  EXPECT_TRUE(r.known());
  ASSERT_EQ(r.count(), b.image.info.component_count);
  for (uint8_t i = 0; i < r.count(); ++i) {
    const ComponentEntry& e = b.image.info.components[i];
    EXPECT_EQ(r.offset(i), e.offset);
    EXPECT_EQ(r.length(i), e.length);
    uint8_t sha[32];
    ASSERT_TRUE(r.component_sha256(b.flash, 1, i, sha));
    EXPECT_EQ(std::memcmp(sha, e.sha256, 32), 0) << int(i);
  }
  EXPECT_TRUE(r.health().has_vectors);
  EXPECT_EQ(b.table.component_count, b.image.info.component_count);  // the parse stays the caller's

  const int cal = b.table.find(ComponentType::Calibration);
  ASSERT_GE(cal, 0);
  const ComponentEntry& e = b.table.components[cal];
  uint8_t out[256];
  ASSERT_EQ(RunningBundle::read_component(b.flash, 1, b.table, ComponentType::Calibration, out, sizeof out),
            e.length);
  EXPECT_EQ(std::memcmp(out, b.bytes.data() + e.offset, e.length), 0);
  EXPECT_EQ(RunningBundle::read_component(b.flash, 1, b.table, ComponentType::Calibration, out, e.length - 1), 0u);
}

TEST(RunningBundle, ABankThatIsNotTheNamedImageIsNotKnown) {
  Bank b;
  RunningBundle r;
  ImageDescriptor other = b.image.desc;
  other.prefix_sha256[0] ^= 1;
  EXPECT_FALSE(r.load(b.flash, b.crypto, 1, other, b.scratch, sizeof b.scratch, b.table));
  EXPECT_FALSE(r.known());
  EXPECT_EQ(r.count(), 0u);
  EXPECT_FALSE(r.load(b.flash, b.crypto, 0, b.image.desc, b.scratch, sizeof b.scratch, b.table));  // erased bank
  ImageDescriptor none;  // no image in the metadata
  EXPECT_FALSE(r.load(b.flash, b.crypto, 1, none, b.scratch, sizeof b.scratch, b.table));
  EXPECT_FALSE(r.load(b.flash, b.crypto, 1, b.image.desc, b.scratch, 64, b.table));  // scratch too small
  ASSERT_TRUE(r.load(b.flash, b.crypto, 1, b.image.desc, b.scratch, sizeof b.scratch, b.table));
  EXPECT_EQ(r.count(), b.image.info.component_count);
}
