#include "esp32s3_boot_policy.h"

namespace tinyfleet::esp32s3 {

StartAction on_start(bool decision_trial, bool running_pending_verify) {
  if (decision_trial && !running_pending_verify) return StartAction::RevertMetadata;
  if (!decision_trial && running_pending_verify) return StartAction::RollbackApp;
  return StartAction::Run;
}

RebootAction on_reboot(BootState stored_state, bool running_pending_verify) {
  if (stored_state == BootState::Trial && !running_pending_verify) return RebootAction::InstallFirmware;
  if (stored_state == BootState::Reverted && running_pending_verify) return RebootAction::RollbackApp;
  return RebootAction::Restart;
}

bool should_mark_valid(BootState stored_state, bool running_pending_verify) {
  return running_pending_verify && stored_state == BootState::Confirmed;
}

}  // namespace tinyfleet::esp32s3
