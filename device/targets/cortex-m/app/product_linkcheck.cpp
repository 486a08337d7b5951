// Link-check stand-ins for the product's parts of the STM32L476 application image (stm32l4_product.h), so that
// stm32l4_app.elf links here and the linker keeps what a product's image keeps: the MQTT client, the sensor,
// the feature extractor and the op resolver are the product's, and none is in this repository. Like the
// footprint image's stand-ins (footprint/agent_main.cpp), they read and write volatile words the compiler
// cannot see through. Never run; not part of the PlatformIO environment, where the product defines these.
#include <cstring>

#include "stm32l4_product.h"

using namespace tinyfleet;

namespace {

volatile uint8_t g_rx[kBlockHeaderLen + kBlockSize];
volatile uint32_t g_rx_len;
volatile char g_rx_topic[kMaxTopicLen];
volatile uint32_t g_tx_sink;
volatile int16_t g_adc[3];
uint8_t g_payload[kBlockHeaderLen + kBlockSize];
char g_topic[kMaxTopicLen];
char g_tx_topic[kMaxTopicLen];
Agent* g_agent;

class LinkCheckTransport final : public app::Transport {
 public:
  void send(const Action& a) override {
    const size_t topic_len = g_agent == nullptr ? 0 : g_agent->topic(a, g_tx_topic);
    uint32_t folded = static_cast<uint32_t>(a.type) + a.qos + a.token + static_cast<uint32_t>(topic_len);
    for (size_t i = 0; i < a.len; ++i) folded += a.payload[i];
    g_tx_sink = g_tx_sink + folded;
  }
  void poll(Agent& agent) override {
    g_agent = &agent;
    const uint32_t n = g_rx_len < sizeof g_payload ? g_rx_len : static_cast<uint32_t>(sizeof g_payload);
    for (uint32_t i = 0; i < n; ++i) g_payload[i] = g_rx[i];
    for (uint32_t i = 0; i < sizeof g_topic; ++i) g_topic[i] = g_rx_topic[i];
    g_topic[sizeof g_topic - 1] = '\0';
    switch (g_payload[0] & 3) {
      case 0: agent.on_message(g_topic, std::strlen(g_topic), g_payload, n); break;
      case 1: agent.on_connection_up(); break;
      case 2: agent.on_connection_down(); break;
      default: agent.on_publish_acked(n); break;
    }
  }
};

class LinkCheckSensor final : public app::Sensor {
 public:
  uint32_t read(int16_t* out, uint32_t max_frames, uint16_t channels) override {
    const uint32_t frames = max_frames < 8 ? max_frames : 8;
    for (uint32_t i = 0; i < frames * channels; ++i) out[i] = g_adc[i % 3];
    return frames;
  }
  bool temperature(int16_t& temp_q8) override {
    temp_q8 = g_adc[0];
    return true;
  }
};

class LinkCheckFeatures final : public app::Features {
 public:
  Status extract(const Agent& agent, uint8_t* out, size_t len) override {
    if (len > sizeof frames_ / sizeof frames_[0]) return Status::InvalidArgument;
    if (!agent.latest_frames(frames_, static_cast<uint32_t>(len / 3))) return Status::NotFound;
    for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(frames_[i]);
    return Status::Ok;
  }

 private:
  int16_t frames_[768];
};

// As TFLM's own resolvers do (TF_LITE_REMOVE_VIRTUAL_DELETE): no deleting destructor, so no ::operator delete.
class LinkCheckOps final : public tflite::MicroOpResolver {
  void operator delete(void*) {}
};

LinkCheckTransport g_transport;
LinkCheckSensor g_sensor;
LinkCheckFeatures g_features;
LinkCheckOps g_ops;
TrustedKey g_key;

}  // namespace

void tinyfleet_product_init() {}
void tinyfleet_product_config(AgentConfig& c) {
  c.device_id = "dev-0001";
  c.hardware_class = "stm32l4";
  c.keys = &g_key;
  c.key_count = 1;
}
app::Transport& tinyfleet_product_transport() { return g_transport; }
app::Sensor& tinyfleet_product_sensor() { return g_sensor; }
app::Features& tinyfleet_product_features() { return g_features; }
const tflite::MicroOpResolver& tinyfleet_product_ops() { return g_ops; }
uint64_t tinyfleet_product_unix_seconds() { return 0; }
uint8_t tinyfleet_product_battery_pct() { return static_cast<uint8_t>(g_adc[1]); }
