// The core's tests on the Cortex-M4 (QEMU mps2-an386 with semihosting): exit status = failed tests.
#include "tests.h"

namespace {

const tt::Test kTests[] = {
    {"transitions.rows_are_unique_and_found", test_transitions_rows_are_unique_and_found},
    {"transitions.unlisted_pairs_are_ignored", test_transitions_unlisted_pairs_are_ignored},
    {"transitions.names", test_transitions_names},
    {"vectors.key_ids", test_vectors_key_ids},
    {"vectors.verdicts", test_vectors_verdicts},
#if TINYFLEET_CORTEX_M
    {"crypto.smallest_pool", test_crypto_smallest_pool},
#endif
    {"boot.unprovisioned_has_no_metadata", test_boot_unprovisioned_has_no_metadata},
    {"boot.confirm_after_healthy_trial", test_boot_confirm_after_healthy_trial},
    {"boot.failed_health_check_boots_old_image", test_boot_failed_health_check_boots_old_image},
    {"boot.unconfirmed_trial_reverted_after_n_boots", test_boot_unconfirmed_trial_reverted_after_n_boots},
    {"boot.corrupted_images_never_boot", test_boot_corrupted_images_never_boot},
    {"powercut.every_cut_point", test_powercut_every_cut_point},
    {"agent.update_confirmed_after_healthy_trial", test_agent_update_confirmed_after_healthy_trial},
    {"agent.failed_health_check_reverts", test_agent_failed_health_check_reverts},
    {"agent.power_cut_at_every_flash_operation", test_agent_power_cut_at_every_flash_operation},
};

}  // namespace

int main() {
  tftarget::platform_init();
  tinyfleet::semihost::write("tinyfleet core tests on " TINYFLEET_TEST_PLATFORM "\n");
  return tt::run_all(kTests, static_cast<int>(sizeof kTests / sizeof kTests[0]));
}
