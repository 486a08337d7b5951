// Boot selection (what the bootloader does), shared by every port, and the metadata transitions of an
// update: install as trial, confirm, revert. A trial image that has not confirmed within max_trial_boots
// boots is reverted. Every boot verifies the chosen image from flash before running it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bank_writer.h"
#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/config.h"
#include "tinyfleet/metadata.h"
#include "tinyfleet/ports.h"
#include "tinyfleet/status.h"

namespace tinyfleet {

struct BootDecision {
  uint8_t bank = 0;           // the bank to run
  bool trial = false;         // running a trial image: the agent must health-check and confirm or revert
  bool reverted = false;      // this boot reverted a trial (attempts ran out or the trial image is invalid)
  MetadataRecord record;      // metadata as stored after this boot
};

// The metadata transitions of an update, without the verifier's buffers: what a running agent needs
// (boot selection itself runs before the agent, in the bootloader or the host shell).
class BootMetadata {
 public:
  explicit BootMetadata(Flash& flash) : store_(flash) {}

  // Factory provisioning: bank holds a verified image; write it as confirmed.
  Status provision(uint8_t bank, const ImageDescriptor& image);
  // After BankWriter::finish(): the other bank becomes the trial (boot attempts 0).
  Status install_trial(uint8_t bank, const ImageDescriptor& image);
  // Health check passed on a trial boot: the trial bank becomes confirmed, the stored counter rises.
  Status confirm();
  // Health check failed: back to the confirmed bank at the next boot.
  Status revert();

  MetadataStore& store() { return store_; }

 private:
  // A trial ends: confirmed (its bank becomes the confirmed one) or reverted.
  Status end_trial(bool confirmed);
  MetadataStore store_;
};

class BootSelector {
 public:
  BootSelector(Flash& flash, Crypto& crypto, uint8_t max_trial_boots = TINYFLEET_MAX_TRIAL_BOOTS)
      : flash_(flash), crypto_(crypto), meta_(flash), max_trial_boots_(max_trial_boots) {}

  // Ok with a verified bank to run, or NoValidImage / NotFound (no metadata) / a flash error.
  Status select(BootDecision& out);

  Status provision(uint8_t bank, const ImageDescriptor& image) { return meta_.provision(bank, image); }
  Status install_trial(uint8_t bank, const ImageDescriptor& image) { return meta_.install_trial(bank, image); }
  Status confirm() { return meta_.confirm(); }
  Status revert() { return meta_.revert(); }

  MetadataStore& store() { return meta_.store(); }
  const BundleInfo& last_info() const { return info_; }

 private:
  Status verify(uint8_t bank, const ImageDescriptor& image);

  Flash& flash_;
  Crypto& crypto_;
  BootMetadata meta_;
  uint8_t max_trial_boots_;
  BundleInfo info_;
  uint8_t window_[kPrefixWindowLen];  // the image's prefix and payloads are read through it
};

}  // namespace tinyfleet
