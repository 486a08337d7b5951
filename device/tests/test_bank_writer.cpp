// The bank writer: bundles too large for the bank, copies from a wrong source or over programmed bytes,
// torn-write recovery during a resumed download, refused writes. (Boot selection over the update driver:
// device/tests/portable/test_boot.cpp, which runs on the Cortex-M4 too.)
#include <gtest/gtest.h>

#include <stdexcept>
#include <utility>
#include <vector>

#include "flash_emulator.h"
#include "mbedtls_crypto.h"
#include "support/bundle_builder.h"
#include "update_driver.h"
#include "tinyfleet/boot.h"

using namespace tinyfleet;
using host::CutMode;
using host::FlashEmulator;
using host::FlashLayout;

namespace {

// A bundle and the update driver's view of it.
struct Bundle {
  std::vector<uint8_t> bytes;
  tftest::Image image;
  Bundle(std::vector<uint8_t> b, Crypto& crypto) : bytes(std::move(b)) {
    if (tftest::make_image(bytes.data(), static_cast<uint32_t>(bytes.size()), crypto, image) != Status::Ok)
      throw std::runtime_error("bundle does not parse");
  }
};

struct Device {
  host::MbedtlsCrypto crypto;
  FlashEmulator flash{FlashLayout::dual_bank(512, 16, 8, 0xFF)};
  BootSelector boot{flash, crypto, 3};
  Bundle old_bundle;
  Bundle new_bundle;
  const tftest::Image& old_image = old_bundle.image;
  const tftest::Image& new_image = new_bundle.image;

  static tftest::BundleSpec new_spec() {
    auto spec = tftest::small_spec(2);
    spec.payloads[1] = tftest::small_spec(1).payloads[1];  // same model: copied, not downloaded
    spec.security_counter = 2;
    return spec;
  }

  Device()
      : old_bundle(tftest::build_bundle(tftest::small_spec(1), nullptr), crypto),
        new_bundle(tftest::build_bundle(new_spec(), nullptr), crypto) {
    if (tftest::write_image(flash, crypto, 0, old_image, 256) != Status::Ok ||
        boot.provision(0, old_image.desc) != Status::Ok)
      throw std::runtime_error("provisioning failed");
  }
};

}  // namespace

TEST(BankWriter, RefusesABundleLargerThanTheBank) {
  host::MbedtlsCrypto crypto;
  FlashEmulator flash(FlashLayout::dual_bank(256, 4, 4, 0xFF));  // 1 KiB banks
  Bundle b(tftest::build_bundle(tftest::small_spec(3), nullptr), crypto);
  const tftest::Image& img = b.image;
  BankWriter w(flash, crypto);
  EXPECT_EQ(w.begin(1, img.info, img.bytes), Status::BundleTooLarge);
  EXPECT_EQ(flash.op_count(), 0u);
}

TEST(BankWriter, CopyFromAWrongSourceIsAHashMismatch) {
  Device dev;
  BankWriter w(dev.flash, dev.crypto);
  ASSERT_EQ(w.begin(1, dev.new_image.info, dev.new_image.bytes), Status::Ok);
  // Firmware differs between the bundles: copying the old one in its place must fail.
  EXPECT_EQ(w.copy_component(0, 0, dev.old_image.info.components[0].offset), Status::HashMismatch);
  EXPECT_EQ(w.verify_component(0), Status::HashMismatch);
}

TEST(BankWriter, CopyOverProgrammedBytesReportsTheWipedRangeNeighboursIncluded) {
  Device dev;
  const auto& img = dev.new_image;
  const ComponentEntry& model = img.info.components[1];  // unchanged: copied from bank 0
  BankWriter w(dev.flash, dev.crypto);
  ASSERT_EQ(w.begin(1, img.info, img.bytes), Status::Ok);
  for (uint8_t i = 0; i < img.info.component_count; ++i) {
    const ComponentEntry& c = img.info.components[i];
    if (i != 1) {
      ASSERT_EQ(w.write(c.offset, img.bytes + c.offset, c.length), Status::Ok);
    }
  }
  // A download of the model was under way before the reboot: its first bytes are programmed.
  ASSERT_EQ(w.write(model.offset, img.bytes + model.offset, 16), Status::Ok);

  BankWriter r(dev.flash, dev.crypto);
  ASSERT_EQ(r.resume(1, img.info, img.bytes), Status::Ok);
  uint32_t lo = 1, hi = 0;
  int old_model = dev.old_image.info.find(ComponentType::Model);
  ASSERT_GE(old_model, 0);
  ASSERT_EQ(r.copy_component(1, 0, dev.old_image.info.components[old_model].offset, &lo, &hi), Status::Ok);
  ASSERT_LT(lo, hi);  // the sectors holding the stale bytes, and only those
  EXPECT_LE(lo, model.offset);
  EXPECT_GE(hi, model.offset + 16);
  EXPECT_EQ(lo % 512, 0u);
  EXPECT_TRUE(hi % 512 == 0 || hi == img.info.header.total_len);
  EXPECT_EQ(r.verify_component(1), Status::Ok);  // the copy itself is whole: no erase between its chunks
  // Every other component reaching into [lo, hi) lost bytes there, and is named by the range.
  int wiped = 0;
  for (uint8_t i = 0; i < img.info.component_count; ++i) {
    const ComponentEntry& c = img.info.components[i];
    if (i == 1) continue;
    if (c.offset < hi && lo < c.end()) {
      ++wiped;
      EXPECT_EQ(r.verify_component(i), Status::HashMismatch) << int(i);
    } else {
      EXPECT_EQ(r.verify_component(i), Status::Ok) << int(i);
    }
  }
  EXPECT_GT(wiped, 0) << "the layout must share a sector with a neighbour for this test to mean anything";
  ImageDescriptor desc;
  EXPECT_EQ(r.finish(desc), Status::HashMismatch);  // until the caller re-fetches the reported range

  // On erased flash nothing is wiped and nothing is reported.
  BankWriter f(dev.flash, dev.crypto);
  ASSERT_EQ(f.begin(1, img.info, img.bytes), Status::Ok);
  lo = 1;
  hi = 1;
  ASSERT_EQ(f.copy_component(1, 0, dev.old_image.info.components[old_model].offset, &lo, &hi), Status::Ok);
  EXPECT_EQ(lo, 0u);
  EXPECT_EQ(hi, 0u);
}

TEST(BankWriter, ResumedDownloadRecoversFromATornBlock) {
  Device dev;
  const auto& img = dev.new_image;
  const ComponentEntry& fw = img.info.components[0];
  BankWriter w(dev.flash, dev.crypto);
  ASSERT_EQ(w.begin(1, img.info, img.bytes), Status::Ok);
  ASSERT_EQ(w.write(fw.offset, img.bytes + fw.offset, 256), Status::Ok);
  dev.flash.cut_power_at(0, CutMode::Torn);
  EXPECT_EQ(w.write(fw.offset + 256, img.bytes + fw.offset + 256, 256), Status::PowerLost);
  dev.flash.power_on();
  // After the reboot the agent resumes (no erase) and rewrites the block its bitmap does not have.
  BankWriter r(dev.flash, dev.crypto);
  ASSERT_EQ(r.resume(1, img.info, img.bytes), Status::Ok);
  uint32_t lo = 1, hi = 0;
  ASSERT_EQ(r.write(fw.offset + 256, img.bytes + fw.offset + 256, 256, &lo, &hi), Status::Ok);
  ASSERT_LT(lo, hi);  // sectors were wiped: the caller re-fetches every block in [lo, hi)
  EXPECT_LE(lo, fw.offset + 256);
  EXPECT_GE(hi, fw.offset + 512);
  for (uint32_t off = 0; off < fw.length; off += 256) {
    uint32_t at = fw.offset + off;
    if (at + 256 <= lo || at >= hi || off == 256) continue;  // untouched, or just written
    uint32_t n = fw.length - off < 256 ? fw.length - off : 256;
    ASSERT_EQ(r.write(at, img.bytes + at, n), Status::Ok);
  }
  for (uint8_t i = 1; i < img.info.component_count; ++i) {
    const ComponentEntry& c = img.info.components[i];
    ASSERT_EQ(r.write(c.offset, img.bytes + c.offset, c.length), Status::Ok);
  }
  ImageDescriptor desc;
  ASSERT_EQ(r.finish(desc), Status::Ok);
  EXPECT_TRUE(tftest::bank_holds(dev.flash, 1, img));
}

TEST(BankWriter, RejectsWritesOutsideComponentsOrMisaligned) {
  Device dev;
  const auto& img = dev.new_image;
  BankWriter w(dev.flash, dev.crypto);
  EXPECT_EQ(w.write(img.info.components[0].offset, img.bytes, 16), Status::InvalidState);
  ASSERT_EQ(w.begin(1, img.info, img.bytes), Status::Ok);
  EXPECT_EQ(w.write(0, img.bytes, 16), Status::InvalidArgument);  // the prefix is not a payload
  const ComponentEntry& fw = img.info.components[0];
  EXPECT_EQ(w.write(fw.offset + 4, img.bytes + fw.offset + 4, 16), Status::FlashMisaligned);
  EXPECT_EQ(w.write(fw.offset, img.bytes + fw.offset, 12), Status::FlashMisaligned);
  EXPECT_EQ(w.write(fw.offset, img.bytes + fw.offset, fw.length + 1), Status::InvalidArgument);
}
