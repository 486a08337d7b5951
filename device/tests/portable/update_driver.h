// Heap-free driver of the core's update API for the tests, as the agent uses it: BankWriter into the
// inactive bank (components the confirmed bank already holds are copied flash to flash, the rest written in
// blocks), then BootSelector::install_trial.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bank_writer.h"
#include "tinyfleet/boot.h"
#include "tinyfleet/bundle_parser.h"

namespace tftest {

// A bundle (the caller keeps its bytes) with its parsed table and descriptor.
struct Image {
  const uint8_t* bytes = nullptr;
  uint32_t len = 0;
  tinyfleet::BundleInfo info;
  tinyfleet::ImageDescriptor desc;
};

struct InstallStats {
  uint32_t components_copied = 0;
  uint32_t components_downloaded = 0;
  uint32_t blocks_downloaded = 0;
};

// Parses a structurally valid bundle and computes its descriptor.
tinyfleet::Status make_image(const uint8_t* bytes, uint32_t len, tinyfleet::Crypto& crypto, Image& out);

// Writes `image` into `bank` and finishes it (no metadata change), downloaded components in blocks of
// `block` bytes. `active`: copy unchanged components from its confirmed bank.
tinyfleet::Status write_image(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, uint8_t bank, const Image& image,
                              uint32_t block, InstallStats* stats = nullptr,
                              const tinyfleet::MetadataRecord* active = nullptr);

// Full install of `image` as the trial in the bank that is not confirmed.
tinyfleet::Status install_update(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, tinyfleet::BootSelector& boot,
                                 const Image& image, uint32_t block, InstallStats* stats = nullptr);

// True if `bank` holds exactly the image's prefix and payloads.
bool bank_holds(tinyfleet::Flash& flash, uint8_t bank, const Image& image);

}  // namespace tftest
