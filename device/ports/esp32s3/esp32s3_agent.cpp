#include "esp32s3_agent.h"

#include <cstring>
#include <ctime>
#include <new>

#include "esp32s3_boot_policy.h"
#include "esp32s3_flash.h"
#include "esp32s3_ota.h"
#include "esp_log.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "mbedtls_crypto.h"
#include "mqtt_client.h"
#if CONFIG_MQTT_PROTOCOL_5
#include "mqtt5_client.h"
#endif
#include "tinyfleet/model_input.h"

namespace tinyfleet::esp32s3 {
namespace {

const char* const kTag = "tinyfleet";

class EspClock final : public Clock {
 public:
  uint64_t unix_seconds() override {
    const time_t now = time(nullptr);
    return now > 1600000000 ? static_cast<uint64_t>(now) : 0;  // 0 until SNTP has set the clock
  }
  uint32_t monotonic_ms() override { return static_cast<uint32_t>(esp_timer_get_time() / 1000); }
};

class EspPower final : public Power {
 public:
  uint8_t pct = 100;
  bool reboot_requested = false;
  uint8_t battery_pct() override { return pct; }
  void request_reboot() override { reboot_requested = true; }
};

Esp32s3Flash g_flash;
host::MbedtlsCrypto g_crypto;
EspClock g_clock;
EspPower g_power;
AgentConfig g_agent_cfg;
alignas(Agent) uint8_t g_agent_storage[sizeof(Agent)];
Agent* g_agent = nullptr;
esp_mqtt_client_handle_t g_client = nullptr;
esp_mqtt_client_config_t g_mqtt_config = {};  // kept: each reconnect's Clean Start is set on it (BEFORE_CONNECT)
StaticSemaphore_t g_lock_storage;
SemaphoreHandle_t g_lock = nullptr;
StaticTask_t g_tick_tcb;
// Both tasks that run agent events (this one and esp-mqtt's) publish from inside them, so a task's stack holds
// the agent's deepest event (1,732 B with mbedTLS on Cortex-M, docs/footprint.md; Xtensa's windowed frames
// are larger) with esp-mqtt's publish and its TLS write beneath it. Not measured on Xtensa: sized with room.
constexpr int kAgentTaskStack = 10240;
StackType_t g_tick_stack[kAgentTaskStack];
uint32_t g_tick_ms = 1000;
bool g_app_pending = false;  // the running app is a trial in otadata's terms, not yet marked valid

// Reassembly of an MQTT message that esp-mqtt delivers in several DATA events.
uint8_t g_rx[kBlockHeaderLen + kBlockSize];
char g_rx_topic[kMaxTopicLen];
size_t g_rx_topic_len = 0;
bool g_rx_dropping = false;

// Publishes of state reports in flight: esp-mqtt message id -> the agent's token.
struct Pending {
  int msg_id = 0;
  uint32_t token = 0;
};
Pending g_pending[TINYFLEET_REPORT_RING * 2];
char g_topic[kMaxTopicLen];  // the action being performed (esp-mqtt copies it)

// The agent's actions go to esp-mqtt while the event runs (it copies topic and payload); a health check
// and a reboot wait for the event to return (after_event).
class EspMqttSink final : public ActionSink {
 public:
  bool health_due = false;
  void perform(const Action& a) override;
};
EspMqttSink g_sink;

uint8_t g_prefix[TINYFLEET_PREFIX_BUFFER_SIZE];
BundleInfo g_info;

void reboot_now() {
  MetadataStore store(g_flash);
  MetadataRecord rec;
  const bool pending = running_pending_verify();
  const BootState state = store.load(rec) == Status::Ok ? rec.state : BootState::Confirmed;
  switch (on_reboot(state, pending)) {
    case RebootAction::InstallFirmware: {
      const uint8_t bank = rec.trial_bank;
      Status s = verify_bank_image(g_flash, g_crypto, bank, rec.images[bank], g_prefix, sizeof g_prefix, g_info);
      if (s == Status::Ok) s = install_firmware(g_flash, g_crypto, bank, g_info);
      if (s != Status::Ok) {
        ESP_LOGE(kTag, "installing the trial firmware failed (%s): reverting", status_name(s));
        BootSelector(g_flash, g_crypto).revert();
      }
      break;
    }
    case RebootAction::RollbackApp:
      rollback_app();  // reboots into the previous app on success
      break;
    case RebootAction::Restart: break;
  }
  esp_restart();
}

void EspMqttSink::perform(const Action& a) {
  const bool mqtt = g_client != nullptr;  // before the client exists (on_boot) MQTT actions are dropped
  g_agent->topic(a, g_topic);
  switch (a.type) {
    case ActionType::Subscribe: {
      if (!mqtt) break;
#if CONFIG_MQTT_PROTOCOL_5
      // Set before every SUBSCRIBE: Retain Handling 1 re-subscribes a resumed session (device-protocol.md).
      esp_mqtt5_subscribe_property_config_t sp = {};
      sp.retain_handle = a.retain_handling;
      esp_mqtt5_client_set_subscribe_property(g_client, &sp);
#endif
      esp_mqtt_client_subscribe(g_client, g_topic, a.qos);
      break;
    }
    case ActionType::Unsubscribe:
      if (mqtt) esp_mqtt_client_unsubscribe(g_client, g_topic);
      break;
    case ActionType::Publish: {
      if (!mqtt) break;
      const int id = esp_mqtt_client_publish(g_client, g_topic, reinterpret_cast<const char*>(a.payload),
                                             static_cast<int>(a.len), a.qos, a.retain ? 1 : 0);
      if (a.token != 0 && id > 0) {
        for (Pending& p : g_pending) {
          if (p.msg_id == 0) {
            p = {id, a.token};
            break;
          }
        }
      }
      break;
    }
    case ActionType::RunHealthCheck: health_due = true; break;
    case ActionType::Reboot: g_power.reboot_requested = true; break;
  }
}

// What the agent asked for outside its event: marking the app valid once confirmed, a reboot, a health
// check (whose result is an event of its own).
void after_event() {
  for (int round = 0; round < 4; ++round) {
    if (g_app_pending) {
      MetadataRecord rec;
      if (MetadataStore(g_flash).load(rec) == Status::Ok && should_mark_valid(rec.state, true) &&
          mark_app_valid() == Status::Ok) {
        g_app_pending = false;
      }
    }
    if (g_power.reboot_requested) reboot_now();
    if (!g_sink.health_due) return;
    g_sink.health_due = false;
    g_agent->run_health_check();
  }
  g_sink.health_due = false;  // a check that asks for another forever is not run after an unrelated event
}

void on_data(const esp_mqtt_event_t* e) {
  if (e->current_data_offset == 0) {
    g_rx_dropping = e->total_data_len > static_cast<int>(sizeof g_rx) || e->topic_len >= static_cast<int>(kMaxTopicLen);
    if (g_rx_dropping) {
      ESP_LOGW(kTag, "dropping a %d-byte message (larger than any tinyfleet message)", e->total_data_len);
      return;
    }
    std::memcpy(g_rx_topic, e->topic, static_cast<size_t>(e->topic_len));
    g_rx_topic_len = static_cast<size_t>(e->topic_len);
  }
  if (g_rx_dropping || e->current_data_offset + e->data_len > static_cast<int>(sizeof g_rx)) return;
  std::memcpy(g_rx + e->current_data_offset, e->data, static_cast<size_t>(e->data_len));
  if (e->current_data_offset + e->data_len < e->total_data_len) return;  // more fragments follow
  g_agent->on_message(g_rx_topic, g_rx_topic_len, g_rx, static_cast<size_t>(e->total_data_len));
  after_event();
}

void on_mqtt_event(void*, esp_event_base_t, int32_t event_id, void* event_data) {
  const auto* e = static_cast<const esp_mqtt_event_t*>(event_data);
  xSemaphoreTake(g_lock, portMAX_DELAY);
  switch (static_cast<esp_mqtt_event_id_t>(event_id)) {
    case MQTT_EVENT_BEFORE_CONNECT:
      // Clean Start on this boot's first connection only: later ones resume the broker's session.
      g_mqtt_config.session.disable_clean_session = !g_agent->connect_options().clean_start;
      esp_mqtt_set_config(g_client, &g_mqtt_config);
      break;
    case MQTT_EVENT_CONNECTED:
      g_agent->on_connection_up(e->session_present != 0);
      after_event();
      break;
    case MQTT_EVENT_DISCONNECTED:
      for (Pending& p : g_pending) p = Pending{};
      g_agent->on_connection_down();
      after_event();
      break;
    case MQTT_EVENT_DATA: on_data(e); break;
    case MQTT_EVENT_PUBLISHED:
      for (Pending& p : g_pending) {
        if (p.msg_id == e->msg_id && p.msg_id != 0) {
          const uint32_t token = p.token;
          p = Pending{};
          g_agent->on_publish_acked(token);
          after_event();
          break;
        }
      }
      break;
    default: break;
  }
  xSemaphoreGive(g_lock);
}

void tick_task(void*) {
  for (;;) {
    vTaskDelay(pdMS_TO_TICKS(g_tick_ms));
    xSemaphoreTake(g_lock, portMAX_DELAY);
    g_agent->on_tick();
    after_event();
    xSemaphoreGive(g_lock);
  }
}

}  // namespace

esp_err_t start(const Config& config) {
  if (!g_flash.open()) {
    ESP_LOGE(kTag, "partition table lacks the tinyfleet partitions (see device/ports/esp32s3/partitions.csv)");
    return ESP_ERR_NOT_FOUND;
  }
  if (config.inference == nullptr || config.device_id == nullptr || config.broker_uri == nullptr)
    return ESP_ERR_INVALID_ARG;
  g_lock = xSemaphoreCreateMutexStatic(&g_lock_storage);
  g_tick_ms = config.tick_ms;

  BootSelector selector(g_flash, g_crypto);
  BootDecision decision;
  Status s = selector.select(decision);
  if (s == Status::Ok) {
    switch (on_start(decision.trial, running_pending_verify())) {
      case StartAction::Run: break;
      case StartAction::RevertMetadata:
        s = selector.revert();
        if (s == Status::Ok) s = selector.select(decision);
        break;
      case StartAction::RollbackApp: rollback_app(); return ESP_FAIL;  // reboots on success
    }
  }
  if (s != Status::Ok) {
    ESP_LOGE(kTag, "boot selection failed: %s", status_name(s));
    return ESP_FAIL;
  }
  g_app_pending = running_pending_verify();
  if (config.prepare_inference != nullptr) config.prepare_inference(g_flash, g_crypto, decision);

  g_agent_cfg.device_id = config.device_id;
  g_agent_cfg.hardware_class = config.hardware_class;
  g_agent_cfg.keys = config.keys;
  g_agent_cfg.key_count = config.key_count;
  g_agent = new (g_agent_storage) Agent(g_agent_cfg, AgentPorts{g_flash, g_crypto, g_power, g_clock, *config.inference, g_sink});

  // The agent starts from the boot decision before the client exists; its presence (the last will) then
  // describes the image that runs.
  xSemaphoreTake(g_lock, portMAX_DELAY);
  g_agent->on_boot(decision);
  after_event();
  xSemaphoreGive(g_lock);

  static Action will;
  static uint8_t will_payload[kPresenceLen];
  static char will_topic[kMaxTopicLen];
  g_agent->will(will_payload, will);
  g_agent->topic(will, will_topic);
  esp_mqtt_client_config_t& mc = g_mqtt_config;
  mc.broker.address.uri = config.broker_uri;
  mc.broker.verification.certificate = config.ca_pem;
  mc.credentials.username = config.device_id;
  mc.credentials.client_id = config.device_id;
  mc.credentials.authentication.password = config.password;
  mc.session.last_will.topic = will_topic;
  mc.session.last_will.msg = reinterpret_cast<const char*>(will.payload);
  mc.session.last_will.msg_len = static_cast<int>(will.len);
  mc.session.last_will.qos = will.qos;
  mc.session.last_will.retain = will.retain ? 1 : 0;
#if CONFIG_MQTT_PROTOCOL_5
  mc.session.protocol_ver = MQTT_PROTOCOL_V_5;
#endif
  mc.buffer.size = static_cast<int>(kBlockHeaderLen + kBlockSize + kMaxTopicLen + 16);  // one TFBK per event
  mc.task.stack_size = kAgentTaskStack;
  mc.session.disable_clean_session = false;  // the first connection of a boot starts a new session
  g_client = esp_mqtt_client_init(&mc);
  if (g_client == nullptr) return ESP_FAIL;
#if CONFIG_MQTT_PROTOCOL_5
  esp_mqtt5_connection_property_config_t cp = {};
  cp.session_expiry_interval = g_agent->connect_options().session_expiry_s;
  esp_mqtt5_client_set_connect_property(g_client, &cp);
#endif
  esp_mqtt_client_register_event(g_client, MQTT_EVENT_ANY, on_mqtt_event, nullptr);

  if (xTaskCreateStatic(tick_task, "tinyfleet", sizeof g_tick_stack, nullptr, 5, g_tick_stack, &g_tick_tcb) ==
      nullptr)
    return ESP_FAIL;
  return esp_mqtt_client_start(g_client);
}

Clock& clock() { return g_clock; }

void battery(uint8_t pct) {
  if (g_agent == nullptr) return;
  xSemaphoreTake(g_lock, portMAX_DELAY);
  g_power.pct = pct;
  g_agent->on_battery(pct);
  after_event();
  xSemaphoreGive(g_lock);
}

void attach_sample_ring(int16_t* storage, uint32_t samples) {
  if (g_agent == nullptr) return;
  xSemaphoreTake(g_lock, portMAX_DELAY);
  g_agent->attach_sample_ring(storage, samples);
  xSemaphoreGive(g_lock);
}

void samples(const int16_t* raw, uint32_t frames) {
  if (g_agent == nullptr) return;
  xSemaphoreTake(g_lock, portMAX_DELAY);
  g_agent->on_samples(raw, frames);
  xSemaphoreGive(g_lock);
}

Status model_input(uint8_t* out, size_t len) {
  if (g_agent == nullptr) return Status::InvalidState;
  xSemaphoreTake(g_lock, portMAX_DELAY);  // the ring is read in place: no samples() while it is
  const Status s = extract_model_input(*g_agent, out, len);
  xSemaphoreGive(g_lock);
  return s;
}

Decision inference(const uint8_t* output, size_t len, uint32_t latency_us) {
  if (g_agent == nullptr) return Decision{};
  xSemaphoreTake(g_lock, portMAX_DELAY);
  const Decision d = g_agent->on_inference(output, len, latency_us);
  xSemaphoreGive(g_lock);
  return d;
}

void temperature(int16_t temp_q8) {
  if (g_agent == nullptr) return;
  xSemaphoreTake(g_lock, portMAX_DELAY);
  g_agent->on_temperature(temp_q8);
  xSemaphoreGive(g_lock);
}

}  // namespace tinyfleet::esp32s3
