// The device agent: a sans-I/O state machine that speaks docs/device-protocol.md.
//
// Theory of operation. The platform shell owns the MQTT connection and the clock of events. It calls one
// on_*() method per event (boot, message, connection up/down, publish acknowledged, tick, battery reading,
// health result); the agent decides the outcome, looks up the row of the transition table
// (transitions.h) and hands each action it decides (subscribe, unsubscribe, publish, run health check,
// reboot) to the shell's ActionSink, in order, during the event. Flash, crypto, power, clock and inference
// are used through the ports, synchronously. Every buffer is a member (an Agent is placed statically by the
// platform), except the calibrated-sample ring, whose size is the application's feature window
// (attach_sample_ring), and the stack buffers an action's payload is encoded into.
//
// The agent itself is the update cycle. It delegates to parts with one job each, which decide but perform
// nothing: a DownloadSession (which blocks to fetch, when to checkpoint, whether to retry a component), a
// RunningBundle (the running bank's table), a ReportQueue (reports until acknowledged) and an InferencePath
// (samples, decisions, the telemetry window).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bank_writer.h"
#include "tinyfleet/boot.h"
#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/download_session.h"
#include "tinyfleet/health.h"
#include "tinyfleet/inference_path.h"
#include "tinyfleet/ports.h"
#include "tinyfleet/progress.h"
#include "tinyfleet/protocol.h"
#include "tinyfleet/report_queue.h"
#include "tinyfleet/running_bundle.h"
#include "tinyfleet/transitions.h"

namespace tinyfleet {

struct AgentConfig {
  const char* device_id = nullptr;       // also the MQTT client id; must pass valid_device_id()
  const char* hardware_class = nullptr;  // the bundles' hardware_class this device accepts
  const TrustedKey* keys = nullptr;      // trusted signing keys (key ids filled)
  size_t key_count = 0;
  uint32_t battery_retry_ms = 60000;     // deferred update re-check period
  uint32_t broker_timeout_ms = 30000;    // trial boot: broker must be reached within this
  uint8_t max_hash_retries = 2;          // re-downloads of a component before HashMismatch
  uint32_t telemetry_period_s = 60;      // telemetry window length
  uint16_t checkpoint_every_blocks = 1;  // download bitmap persisted every N blocks (and per component)
  uint32_t session_expiry_s = 86400;     // CONNECT's Session Expiry Interval (connect_options())
};

enum class ActionType : uint8_t { Subscribe, Unsubscribe, Publish, RunHealthCheck, Reboot };

// The topic an action names (docs/device-protocol.md, "Topics"): the first four are the device's own, in
// DeviceTopic's order. An action carries what its topic is made of, not the text: Agent::topic() renders it.
enum class ActionTopic : uint8_t { Desired, State, Telemetry, Presence, Meta, Block, None };

// One thing the shell must do. Its pointers are valid only during ActionSink::perform(): a shell that acts
// later copies what it needs (the rendered topic, the payload), as an MQTT client's outbox does anyway.
struct Action {
  ActionType type;
  ActionTopic topic_kind;
  uint8_t qos;
  bool retain;
  // Subscribe: MQTT v5 Retain Handling. 0: the broker sends the topic's retained message. 1: only if the
  // subscription is new (a resumed session re-subscribing what the broker should still hold; a shell whose
  // client cannot say so sends 0, and the agent drops the duplicate).
  uint8_t retain_handling;
  uint32_t token;          // Publish of a state report: its seq, to pass back to on_publish_acked()
  uint32_t block;          // ActionTopic::Block: the block index
  const uint8_t* digest;   // ActionTopic::Meta: the bundle's digest; Block: the component's SHA-256 (32 bytes)
  const uint8_t* payload;  // Publish: len bytes
  size_t len;
};

// What the shell's MQTT CONNECT carries besides the will (docs/device-protocol.md, "Connection").
struct ConnectOptions {
  bool clean_start;           // true until the first on_connection_up() of this boot: a new boot has no session
  uint32_t session_expiry_s;  // AgentConfig::session_expiry_s
};

// The shell's half of an event. The agent calls perform() once per action, in order, while the event runs;
// perform() must not call the agent's events (on_*(), run_health_check()), only topic() to render the
// action's topic. Subscribe, Unsubscribe and Publish go to the MQTT client (which copies topic and payload);
// RunHealthCheck and Reboot are noted and done after the event returns.
class ActionSink {
 public:
  virtual void perform(const Action& a) = 0;

 protected:
  ~ActionSink() = default;
};

struct AgentPorts {
  Flash& flash;
  Crypto& crypto;
  Power& power;
  Clock& clock;
  Inference& inference;
  ActionSink& actions;
};

class Agent {
 public:
  Agent(const AgentConfig& cfg, const AgentPorts& ports);

  // --- events (each hands its actions to ports.actions before it returns) ---
  // After boot selection (the bootloader, or BootSelector::select on host/sim) chose `decision`.
  void on_boot(const BootDecision& decision);
  void on_message(const char* topic, size_t topic_len, const uint8_t* payload, size_t len);
  // session_present: CONNACK's Session Present flag. With it the broker kept this boot's subscriptions and
  // queued what they received meanwhile; without it (or from a shell that cannot tell) everything is
  // subscribed afresh.
  void on_connection_up(bool session_present = false);
  void on_connection_down();
  void on_publish_acked(uint32_t token);
  void on_tick();
  void on_battery(uint8_t pct);
  void on_health_result(const HealthOutcome& result);
  // Runs the golden vectors through the Inference port on the running bank and applies the result
  // (what the shell does on ActionType::RunHealthCheck).
  void run_health_check();

  // An action's topic, written to out[kMaxTopicLen] for this device; its length (0: the action has none).
  // Valid while the action is (during perform()).
  size_t topic(const Action& a, char* out) const;

  // --- inference path (not update-cycle events: no transitions, no reports) ---
  // The application's storage for the calibrated frames latest_frames() returns: `samples` int16 slots
  // (frames = samples / channel_count), sized for its feature window. Attach once after construction;
  // without it, samples are still calibrated and counted in drift.
  void attach_sample_ring(int16_t* storage, uint32_t samples) { inference_.attach_sample_ring(storage, samples); }
  // Raw int16 frames (channel_count samples each, interleaved): calibrated into the ring, counted in drift.
  void on_samples(const int16_t* raw, uint32_t frames) { inference_.on_samples(raw, frames); }
  // The most recent calibrated frames, oldest first (the feature extractor's input); false if too few.
  bool latest_frames(int16_t* out, uint32_t frames) const { return inference_.latest_frames(out, frames); }
  // The same frames read in place (no copy), for features::extract(); false if too few.
  bool latest_window(uint32_t frames, RingWindow& out) const { return inference_.latest_window(frames, out); }
  // The running bundle's feature extractor (features.h), Unknown if this firmware has none of its name.
  FeatureExtractorId feature_extractor() const { return running_bundle_.health().feature_extractor; }
  // A model output tensor and its latency: thresholds decide, drift counts it.
  Decision on_inference(const uint8_t* output, size_t len, uint32_t latency_us) {
    return inference_.on_inference(output, len, latency_us);
  }
  void on_temperature(int16_t temp_q8) { inference_.on_temperature(temp_q8); }
  const Calibration& calibration() const { return inference_.calibration(); }
  const DriftWindow& drift() const { return inference_.drift(); }

  // Before each connect: Clean Start and Session Expiry for the CONNECT.
  ConnectOptions connect_options() const { return ConnectOptions{!session_, cfg_.session_expiry_s}; }

  // The will to register at connect: presence, status offline, encoded into payload (out.payload points
  // there).
  void will(uint8_t payload[kPresenceLen], Action& out) const;

  // --- observation (tests, simulator) ---
  AgentState state() const { return state_; }
  const uint8_t* running_digest() const { return running_.prefix_sha256; }
  const ProgressRecord& progress() const { return progress_; }
  uint32_t blocks_fetched() const { return download_.blocks_fetched(); }  // block messages written this run
  uint32_t bad_blocks() const { return download_.bad_blocks(); }          // dropped (malformed, CRC)
  uint32_t pending_reports() const { return reports_.pending(); }
  Reason last_reason() const { return last_reason_; }

 private:
  // Actions (handed to ports_.actions).
  void signal(ActionType type);  // RunHealthCheck or Reboot
  // UNSUBSCRIBE, SUBSCRIBE with Retain Handling 0, or with 1 (renewing what a resumed session holds).
  enum class Sub : uint8_t { Off, On, Renew };
  void subscribe(Sub op, ActionTopic kind, const uint8_t* digest = nullptr, uint32_t block = 0);
  void publish(ActionTopic kind, const uint8_t* payload, size_t len, uint8_t qos, bool retain, uint32_t token);
  void publish_presence(uint8_t status);
  void publish_report(const ReportQueue::Entry& e);
  void encode_presence_now(uint8_t status, uint8_t* out) const;

  // The update cycle: transitions, reports, the persistent record.
  void apply(AgentEvent event, Outcome outcome, Reason reason, uint32_t d0 = 0, uint32_t d1 = 0);
  void emit_report(AgentState from, AgentState to, AgentEvent event, Reason reason, uint32_t d0, uint32_t d1);
  void persist();
  void adopt_attempt();
  void handle_desired(const uint8_t* payload, size_t len);
  void evaluate_desired();
  void handle_meta(const uint8_t* payload, size_t len);
  void try_start_download(AgentEvent event, uint8_t battery_pct);

  // The download (DownloadSession decides what to fetch; these write, stage and subscribe).
  Outcome start_download(Reason& reason, uint32_t& d0, uint32_t& d1);
  bool stage_in_place(uint8_t bank);
  Status open_bank(uint8_t bank, bool resume);
  void copy_unchanged_components();
  void drop_unverified_components();
  bool bank_holds_prefix(uint8_t bank, uint32_t len);
  void handle_block(const ParsedTopic& t, const uint8_t* payload, size_t len);
  bool write_block(uint8_t c, uint32_t index, const uint8_t* data, size_t len);
  bool component_verified(uint8_t c);
  Outcome finish_image(Reason& reason);
  void record_trial_pending();
  void abandon_download();
  void fill_window(Sub op = Sub::On);

  // The trial.
  void handle_health(const HealthOutcome& result);
  void confirm_trial(AgentEvent event);
  void fail_trial(AgentEvent event, Reason reason, uint32_t d0, uint32_t d1);
  void request_reboot();

  void load_running_components();
  void maybe_publish_telemetry(uint32_t now_ms);

  AgentConfig cfg_;
  AgentPorts ports_;
  BootMetadata boot_;
  BankWriter writer_;
  ProgressStore store_;

  AgentState state_ = AgentState::PowerOn;
  bool connected_ = false;
  bool booted_ = false;
  uint8_t running_bank_ = 0;
  bool running_trial_ = false;
  ImageDescriptor running_;
  ImageDescriptor other_;
  uint32_t stored_counter_ = 0;
  ProgressRecord progress_;
  Reason last_reason_ = Reason::None;

  // Desired state: the latest received, and the one being worked on in this run.
  bool have_desired_ = false;
  DesiredState latest_;
  bool have_current_ = false;
  DesiredState current_;

  // The signed meta of the update (Checking to Downloading); scratch at boot (the running bank's prefix,
  // calibration, thresholds) and for the health vectors during a trial, when no update is in progress.
  uint8_t prefix_[TINYFLEET_PREFIX_BUFFER_SIZE > kHealthScratchLen ? TINYFLEET_PREFIX_BUFFER_SIZE
                                                                   : kHealthScratchLen];
  // The update being installed: its table (also the running table's parse scratch at boot) and blocks.
  DownloadSession download_;
  uint32_t deferred_since_ms_ = 0;

  // Trial boot.
  uint32_t boot_ms_ = 0;
  bool vectors_passed_ = false;
  bool broker_reached_ = false;

  bool session_ = false;  // connected once in this boot: the broker holds a session with our subscriptions

  RunningBundle running_bundle_;  // the running bank's table, loaded at boot

  ReportQueue reports_;
  InferencePath inference_;
};

}  // namespace tinyfleet
