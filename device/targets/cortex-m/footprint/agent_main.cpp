// The footprint image: the agent as an STM32L476 application places it (statically, with its ports) and a
// main loop that feeds it every kind of event from a receive buffer it cannot see through (volatile), so
// the linker keeps exactly what a real application keeps. It is measured, not run: bench/footprint.py
// reads its map, stack and call-graph files. The application-side ports below are the minimum an
// application provides; the report lists their size under "application", apart from the core and ports.
#include <cstring>

#include "mbedtls_crypto.h"
#include "mbedtls_pool.h"
#include "stm32l4_boot.h"
#include "stm32l4_flash.h"
#include "tinyfleet/agent.h"
#include "tinyfleet/features.h"

using namespace tinyfleet;

namespace {

// Cycle counter (DWT) as the monotonic clock; no RTC set: unix time unknown (0), as ports.h allows.
class CycleClock final : public Clock {
 public:
  uint64_t unix_seconds() override { return 0; }
  uint32_t monotonic_ms() override {
    volatile uint32_t& cyccnt = *reinterpret_cast<volatile uint32_t*>(0xE0001004u);
    return cyccnt / 4000u;  // MSI 4 MHz after reset
  }
};

// A mains-powered board: always 100 %; reboots through the system reset.
class MainsPower final : public Power {
 public:
  uint8_t battery_pct() override { return 100; }
  void request_reboot() override { stm32l4::system_reset(); }
};

// No model runtime in this image (TFLite Micro's size is the model's, not the agent's): every health
// check fails, which is what an image without a model must report.
class NoModel final : public Inference {
 public:
  Status run(const uint8_t*, size_t, uint8_t*, size_t, InferenceResult&) override { return Status::InvalidState; }
};

stm32l4::McuBus g_bus;
stm32l4::Stm32l4Flash g_flash(g_bus);
host::MbedtlsCrypto g_crypto;
CycleClock g_clock;
MainsPower g_power;
NoModel g_model;
Agent& agent();

// Stand-in for the MQTT client's transmit side: what it would send (topic and payload) folded into a
// volatile word; a health check or reboot is noted for after the event, as ActionSink asks.
volatile uint32_t g_tx_sink;
char g_tx_topic[kMaxTopicLen];
class MqttStandIn final : public ActionSink {
 public:
  bool health_due = false;
  bool reboot_due = false;
  void perform(const Action& a) override {
    if (a.type == ActionType::RunHealthCheck) health_due = true;
    if (a.type == ActionType::Reboot) reboot_due = true;
    const size_t topic_len = agent().topic(a, g_tx_topic);
    uint32_t folded = 0;
    for (size_t i = 0; i < a.len; ++i) folded += a.payload[i];
    g_tx_sink = g_tx_sink + static_cast<uint32_t>(a.type) + folded + static_cast<uint32_t>(topic_len) +
                static_cast<uint8_t>(g_tx_topic[0]) + a.qos + a.token;
  }
};
MqttStandIn g_mqtt;

MetadataStore g_metadata(g_flash);  // boot selection is the bootloader's: its decision comes in the handoff
TrustedKey g_key;

AgentConfig config() {
  AgentConfig c;
  c.device_id = "dev-0001";
  c.hardware_class = "stm32l4";
  c.keys = &g_key;
  c.key_count = 1;
  return c;
}
Agent g_agent(config(), AgentPorts{g_flash, g_crypto, g_power, g_clock, g_model, g_mqtt});
Agent& agent() { return g_agent; }

// Stand-in for the MQTT client's receive buffer.
volatile uint8_t g_rx[kBlockHeaderLen + kBlockSize];
volatile uint32_t g_rx_len;
volatile char g_rx_topic[kMaxTopicLen];
uint8_t g_payload[kBlockHeaderLen + kBlockSize];
char g_topic[kMaxTopicLen];
int16_t g_samples[64];
int16_t g_ring[2048];  // the application's calibrated-sample ring (its feature window: 2048 samples)
int8_t g_input[768];   // the model's input tensor (in a TFLite Micro arena on a real board)

// After each event: what the agent asked to be done outside it.
void after_event() {
  while (g_mqtt.health_due && !g_mqtt.reboot_due) {
    g_mqtt.health_due = false;
    g_agent.run_health_check();
  }
  if (g_mqtt.reboot_due) g_power.request_reboot();
}

}  // namespace

int main() {
  cortexm::mbedtls_pool_init();
  g_agent.attach_sample_ring(g_ring, sizeof g_ring / sizeof g_ring[0]);
  BootDecision decision;
  if (stm32l4::take_boot_decision(g_bus, g_metadata, decision) == Status::Ok) g_agent.on_boot(decision);
  after_event();
  for (;;) {
    const uint32_t n = g_rx_len < sizeof g_payload ? g_rx_len : static_cast<uint32_t>(sizeof g_payload);
    for (uint32_t i = 0; i < n; ++i) g_payload[i] = g_rx[i];
    for (uint32_t i = 0; i < sizeof g_topic; ++i) g_topic[i] = g_rx_topic[i];
    g_topic[sizeof g_topic - 1] = '\0';
    switch (g_payload[0] & 7) {
      case 0: g_agent.on_message(g_topic, std::strlen(g_topic), g_payload, n); break;
      case 1: g_agent.on_connection_up(); break;
      case 2: g_agent.on_connection_down(); break;
      case 3: g_agent.on_publish_acked(n); break;
      case 4: g_agent.on_battery(g_payload[1]); break;
      case 5:
        std::memcpy(g_samples, g_payload, sizeof g_samples);
        g_agent.on_samples(g_samples, 8);
        g_agent.on_temperature(g_samples[0]);
        break;
      case 6: {
        // The ML path: the running bundle's feature extractor over the ring's latest window, in place, into
        // the model's input tensor; the model's output through the thresholds.
        const FeatureExtractorId fe = g_agent.feature_extractor();
        const features::Shape shape = features::shape(fe);
        RingWindow window;
        if (g_agent.latest_window(shape.frames, window) &&
            features::extract(fe, window, g_input, shape.output_bytes()) == Status::Ok) {
          g_tx_sink = g_tx_sink + static_cast<uint8_t>(g_input[0]);
        }
        g_tx_sink = static_cast<uint32_t>(g_agent.on_inference(g_payload, 4, n).winner);
        break;
      }
      default: g_agent.on_tick(); break;
    }
    after_event();
    stm32l4::iwdg_refresh(g_bus);
  }
}
