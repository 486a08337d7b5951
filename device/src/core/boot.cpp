// Boot selection. Theory of operation: the metadata says which bank is confirmed and whether a trial is
// pending; every image is re-verified from flash (prefix digest from the metadata, then each payload's
// hash from the signed table) before it runs, so a bank that a power cut left half-written can never
// boot. A trial boot is counted in the metadata BEFORE the image runs: an image that hangs or crashes
// still uses up its attempts, and after max_trial_boots the confirmed bank boots again.
#include "tinyfleet/boot.h"

namespace tinyfleet {

Status BootSelector::verify(uint8_t bank, const ImageDescriptor& image) {
  return verify_bank_image(flash_, crypto_, bank, image, window_, sizeof window_, info_);
}

Status BootSelector::select(BootDecision& out) {
  MetadataRecord rec;
  Status s = meta_.store().load(rec);
  if (s != Status::Ok) return s;
  out = BootDecision{};
  if (rec.state == BootState::Trial) {
    Status v = rec.boot_attempts < max_trial_boots_ ? verify(rec.trial_bank, rec.images[rec.trial_bank])
                                                    : Status::NoValidImage;
    if (v == Status::PowerLost) return v;
    if (v == Status::Ok) {
      rec.boot_attempts = static_cast<uint8_t>(rec.boot_attempts + 1);
      s = meta_.store().store(rec);
      if (s != Status::Ok) return s;
      out.bank = rec.trial_bank;
      out.trial = true;
      out.record = rec;
      return Status::Ok;
    }
    rec.state = BootState::Reverted;
    rec.boot_attempts = 0;
    s = meta_.store().store(rec);
    if (s != Status::Ok) return s;
    out.reverted = true;
  }
  s = verify(rec.confirmed_bank, rec.images[rec.confirmed_bank]);
  if (s == Status::PowerLost) return s;
  if (s != Status::Ok) return Status::NoValidImage;
  out.bank = rec.confirmed_bank;
  out.record = rec;
  return Status::Ok;
}

Status BootMetadata::provision(uint8_t bank, const ImageDescriptor& image) {
  if (bank > 1) return Status::InvalidArgument;
  MetadataRecord rec;
  rec.state = BootState::Confirmed;
  rec.confirmed_bank = bank;
  rec.trial_bank = static_cast<uint8_t>(1 - bank);
  rec.security_counter = image.security_counter;
  rec.images[bank] = image;
  return store_.store(rec);
}

Status BootMetadata::install_trial(uint8_t bank, const ImageDescriptor& image) {
  MetadataRecord rec;
  Status s = store_.load(rec);
  if (s != Status::Ok) return s;
  if (bank > 1 || bank == rec.confirmed_bank) return Status::InvalidArgument;
  rec.state = BootState::Trial;
  rec.trial_bank = bank;
  rec.boot_attempts = 0;
  rec.images[bank] = image;
  return store_.store(rec);
}

Status BootMetadata::confirm() { return end_trial(true); }

Status BootMetadata::revert() { return end_trial(false); }

Status BootMetadata::end_trial(bool confirmed) {
  MetadataRecord rec;
  Status s = store_.load(rec);
  if (s != Status::Ok) return s;
  if (rec.state != BootState::Trial) return Status::InvalidState;
  rec.state = BootState::Reverted;
  if (confirmed) {
    const uint8_t old = rec.confirmed_bank;
    rec.state = BootState::Confirmed;
    rec.confirmed_bank = rec.trial_bank;
    rec.trial_bank = old;
    if (rec.images[rec.confirmed_bank].security_counter > rec.security_counter)
      rec.security_counter = rec.images[rec.confirmed_bank].security_counter;
  }
  rec.boot_attempts = 0;
  return store_.store(rec);
}

}  // namespace tinyfleet
