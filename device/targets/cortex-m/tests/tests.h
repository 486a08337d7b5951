// The Cortex-M test functions (one file each group), listed in main.cpp's table.
#pragma once

#include "tinytest.h"

#ifndef TINYFLEET_TEST_PLATFORM
#define TINYFLEET_TEST_PLATFORM "Cortex-M4"
#endif

namespace tftarget {
// What the platform needs before the tests (Cortex-M: mbedTLS's static pool; host: nothing).
void platform_init();
}  // namespace tftarget

void test_transitions_rows_are_unique_and_found();
void test_transitions_unlisted_pairs_are_ignored();
void test_transitions_names();
void test_vectors_key_ids();
void test_vectors_verdicts();
void test_crypto_smallest_pool();
void test_boot_unprovisioned_has_no_metadata();
void test_boot_confirm_after_healthy_trial();
void test_boot_failed_health_check_boots_old_image();
void test_boot_unconfirmed_trial_reverted_after_n_boots();
void test_boot_corrupted_images_never_boot();
void test_powercut_every_cut_point();
void test_agent_update_confirmed_after_healthy_trial();
void test_agent_failed_health_check_reverts();
void test_agent_power_cut_at_every_flash_operation();
