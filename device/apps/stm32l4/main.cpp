// The STM32L476 application image: the firmware component of an stm32l4 bundle, run in place from its bank
// (linked for the bank's firmware offset, runtime/stm32l476rg_app.ld) after the bootloader started it. The
// agent on the STM32 flash port and the mbedTLS crypto port, the TFLite Micro Inference port over a static
// tensor arena in SRAM2, and the application loop (application.h) over the product's transport, sensor and
// feature extractor (stm32l4_product.h).
//
// Started without the bootloader's decision (cold SRAM, a debugger), it runs nothing: the boot handoff is
// how firmware learns which bank and which trial it is (docs/ports.md), and selecting again here would count
// a trial attempt twice.
#include <cstdint>

#include "application.h"
#include "mbedtls_crypto.h"
#include "mbedtls_pool.h"
#include "running_model.h"
#include "stm32l4_boot.h"
#include "stm32l4_flash.h"
#include "stm32l4_product.h"
#include "tinyfleet/agent.h"

// The tensor arena: at least the bundles' manifest arena_bytes (the model gate's measurement in TFLite Micro).
// In SRAM2 (0x10000000, 32 KiB), which the agent does not use.
#ifndef TINYFLEET_TFLM_ARENA_BYTES
#define TINYFLEET_TFLM_ARENA_BYTES (32 * 1024)
#endif
// The largest model component: copied from the running bank into SRAM1 and run from there.
#ifndef TINYFLEET_TFLM_MODEL_BYTES
#define TINYFLEET_TFLM_MODEL_BYTES (32 * 1024)
#endif
// Core clock of the DWT cycle counter: MSI's 4 MHz after reset; a product that changes the clock tree in
// tinyfleet_product_init() sets its frequency here.
#ifndef TINYFLEET_CORE_HZ
#define TINYFLEET_CORE_HZ 4000000u
#endif

using namespace tinyfleet;

namespace {

// The DWT cycle counter, extended past its 32-bit wrap by reading it at least once per wrap (every 1,073 s at
// 4 MHz, 53 s at 80 MHz): the application loop reads the clock on every pass.
class CycleClock final : public Clock {
 public:
  void start() {
    *reinterpret_cast<volatile uint32_t*>(0xE000EDFCu) |= 1u << 24;  // DEMCR.TRCENA
    *reinterpret_cast<volatile uint32_t*>(0xE0001004u) = 0;         // DWT_CYCCNT
    *reinterpret_cast<volatile uint32_t*>(0xE0001000u) |= 1u;       // DWT_CTRL.CYCCNTENA
    last_ = 0;
  }
  uint64_t unix_seconds() override { return tinyfleet_product_unix_seconds(); }
  uint32_t monotonic_ms() override {
    const uint32_t now = *reinterpret_cast<volatile uint32_t*>(0xE0001004u);
    cycles_ += now - last_;
    last_ = now;
    return static_cast<uint32_t>(cycles_ / (TINYFLEET_CORE_HZ / 1000u));
  }

 private:
  uint32_t last_ = 0;
  uint64_t cycles_ = 0;
};

class BoardPower final : public Power {
 public:
  uint8_t battery_pct() override { return tinyfleet_product_battery_pct(); }
  void request_reboot() override { stm32l4::system_reset(); }
};

AgentConfig agent_config() {
  AgentConfig c;
  tinyfleet_product_config(c);
  return c;
}

alignas(16) uint8_t g_arena[TINYFLEET_TFLM_ARENA_BYTES] __attribute__((section(".sram2")));
alignas(16) uint8_t g_model_bytes[TINYFLEET_TFLM_MODEL_BYTES];
uint8_t g_prefix[TINYFLEET_PREFIX_BUFFER_SIZE];
BundleInfo g_table;
int16_t g_ring[2048];  // the calibrated-sample ring: the feature window (256 frames x 3 channels) with room
uint8_t g_input[1024];   // the model's input and output, copied in and out of the arena's tensors
uint8_t g_output[64];

stm32l4::McuBus g_bus;
stm32l4::Stm32l4Flash g_flash(g_bus);
host::MbedtlsCrypto g_crypto;
CycleClock g_clock;
BoardPower g_power;
tflm::TflmInference g_model(g_clock, tinyfleet_product_ops(), g_arena, sizeof g_arena);
app::ActionRelay g_relay(tinyfleet_product_transport());
Agent g_agent(agent_config(), AgentPorts{g_flash, g_crypto, g_power, g_clock, g_model, g_relay});
MetadataStore g_metadata(g_flash);
app::Application g_app(g_agent, g_relay, g_model, tinyfleet_product_transport(), tinyfleet_product_sensor(),
                       tinyfleet_product_features(), g_power, g_clock, g_input, sizeof g_input, g_output,
                       sizeof g_output, app::AppConfig{});

}  // namespace

int main() {
  g_clock.start();
  cortexm::mbedtls_pool_init();
  tinyfleet_product_init();
  g_agent.attach_sample_ring(g_ring, sizeof g_ring / sizeof g_ring[0]);
  BootDecision decision;
  if (stm32l4::take_boot_decision(g_bus, g_metadata, decision) != Status::Ok) {
    for (;;) asm volatile("wfi");
  }
  // The running bank's model, before the agent's on_boot: a trial's health check runs it. A bank whose model
  // does not load leaves none, and that trial fails its health check (HealthInference) and is reverted.
  if (tflm::load_running_model(g_model, g_flash, g_crypto, decision, g_prefix, sizeof g_prefix, g_table, g_model_bytes,
                               sizeof g_model_bytes) == Status::Ok) {
    g_app.set_model(g_table.manifest.input.nbytes(), g_table.manifest.output.nbytes());
  }
  g_app.boot(decision);
  for (;;) {
    g_app.step();
    stm32l4::iwdg_refresh(g_bus);
  }
}
