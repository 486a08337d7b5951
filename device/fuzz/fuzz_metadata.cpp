// libFuzzer target: the metadata record decoder, and boot selection over metadata copies and banks taken from
// the input (support/metadata_input.h), on the host flash emulator. The seeds include banks holding real,
// correctly hashed images that the metadata names, so selection gets past the image verification.
// Besides memory safety: a record that decodes re-encodes to its bytes; a selected bank verifies from flash;
// what selection stored is what it returned; a trial boot is counted and never exceeds max_trial_boots.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mbedtls_crypto.h"
#include "support/metadata_input.h"
#include "support/require.h"
#include "tinyfleet/boot.h"

using namespace tinyfleet;
using fuzzsupport::require;

namespace {
constexpr uint8_t kMaxTrialBoots = 3;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MetadataRecord rec;
  if (decode_metadata(data, size, rec) == Status::Ok) {
    uint8_t again[kMetadataRecordLen];
    encode_metadata(rec, again);
    require(std::memcmp(again, data, kMetadataRecordLen) == 0, "a metadata record re-encodes to its bytes");
  }
  static host::MbedtlsCrypto crypto;
  host::FlashEmulator flash(fuzzsupport::metadata_layout());
  fuzzsupport::load_metadata_input(data, size, flash);
  BootSelector selector(flash, crypto, kMaxTrialBoots);
  BootDecision d;
  for (int i = 0; i < 4; ++i) {
    if (selector.select(d) != Status::Ok) break;
    require(d.bank <= 1, "selection names a bank");
    static uint8_t window[kPrefixWindowLen];
    static BundleInfo info;
    const ImageDescriptor& image = d.record.images[d.bank];
    const Status verified = verify_bank_image(flash, crypto, d.bank, image, window, sizeof window, info);
    require(verified == Status::Ok, "the selected bank verifies from flash");
    require(!d.trial || (d.record.boot_attempts >= 1 && d.record.boot_attempts <= kMaxTrialBoots),
            "a trial boot is counted, at most max_trial_boots times");
    MetadataRecord stored;
    uint8_t a[kMetadataRecordLen], b[kMetadataRecordLen];
    encode_metadata(d.record, a);
    require(selector.store().load(stored) == Status::Ok, "selection leaves valid metadata");
    encode_metadata(stored, b);
    require(std::memcmp(a, b, sizeof a) == 0, "selection returns the record it stored");
  }
  return 0;
}
