// Test driver of the core's update API, as the agent uses it: BankWriter into the inactive bank (copying
// components the active bank already holds, downloading the rest in blocks), then BootSelector's
// install_trial / select / confirm / revert.
#pragma once

#include <cstdint>
#include <vector>

#include "tinyfleet/bank_writer.h"
#include "tinyfleet/boot.h"
#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/metadata.h"
#include "tinyfleet/ports.h"

namespace tftest {

struct Image {
  std::vector<uint8_t> bytes;
  tinyfleet::BundleInfo info;
  tinyfleet::ImageDescriptor desc;
};

// Parse a (structurally valid) bundle and compute its descriptor.
Image make_image(std::vector<uint8_t> bytes, tinyfleet::Crypto& crypto);

struct InstallStats {
  uint32_t components_copied = 0;
  uint32_t components_downloaded = 0;
  uint32_t blocks_downloaded = 0;
};

// Write `image` into `bank` and finish (no metadata). Block size for downloaded components: `block`.
tinyfleet::Status write_image(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, uint8_t bank, const Image& image,
                              uint32_t block, InstallStats* stats = nullptr,
                              const tinyfleet::MetadataRecord* active = nullptr);

// Full install of `image` as the trial in the bank that is not confirmed.
tinyfleet::Status install_update(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, tinyfleet::BootSelector& boot,
                                 const Image& image, uint32_t block, InstallStats* stats = nullptr);

// True if the bank holds exactly this image's prefix and payloads.
bool bank_holds(tinyfleet::Flash& flash, uint8_t bank, const Image& image);

}  // namespace tftest
