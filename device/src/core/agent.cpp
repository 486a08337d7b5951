#include "tinyfleet/agent.h"

#include <cstring>

#include "tinyfleet/bytes.h"

namespace tinyfleet {
namespace {

bool digest_eq(const uint8_t* a, const uint8_t* b) { return std::memcmp(a, b, 32) == 0; }

}  // namespace

Agent::Agent(const AgentConfig& cfg, const AgentPorts& ports)
    : cfg_(cfg),
      ports_(ports),
      boot_(ports.flash),
      writer_(ports.flash, ports.crypto),
      store_(ports.flash) {}

// --- actions ----------------------------------------------------------------------------------------

void Agent::signal(ActionType type) {
  Action a{};
  a.type = type;
  a.topic_kind = ActionTopic::None;
  ports_.actions.perform(a);
}

void Agent::subscribe(bool on, ActionTopic kind, const uint8_t* digest, uint32_t block) {
  Action a{};
  a.type = on ? ActionType::Subscribe : ActionType::Unsubscribe;
  a.topic_kind = kind;
  a.qos = 1;
  a.digest = digest;
  a.block = block;
  ports_.actions.perform(a);
}

void Agent::publish(ActionTopic kind, const uint8_t* payload, size_t len, uint8_t qos, bool retain,
                    uint32_t token) {
  Action a{};
  a.type = ActionType::Publish;
  a.topic_kind = kind;
  a.qos = qos;
  a.retain = retain;
  a.token = token;
  a.payload = payload;
  a.len = len;
  ports_.actions.perform(a);
}

size_t Agent::topic(const Action& a, char* out) const {
  bool ok = false;
  switch (a.topic_kind) {
    case ActionTopic::None: break;
    case ActionTopic::Meta: ok = meta_topic(out, a.digest); break;
    case ActionTopic::Block: ok = block_topic(out, a.digest, a.block); break;
    default: ok = device_topic(out, cfg_.device_id, static_cast<DeviceTopic>(a.topic_kind)); break;
  }
  if (!ok) out[0] = '\0';
  return ok ? std::strlen(out) : 0;
}

void Agent::encode_presence_now(uint8_t status, uint8_t* out) const {
  Presence p;
  p.status = status;
  p.image_state = running_trial_ ? 2 : 1;
  p.epoch = progress_.epoch;
  p.last_seq = report_seq_;
  std::memcpy(p.running_digest, running_.prefix_sha256, 32);
  std::strncpy(p.hardware_class, cfg_.hardware_class, 32);
  p.bank_size = ports_.flash.geometry(bank_area(static_cast<uint8_t>(1 - running_bank_))).size;
  p.security_counter = stored_counter_;
  p.device_time = ports_.clock.unix_seconds();
  encode_presence(p, out);
}

void Agent::will(uint8_t payload[kPresenceLen], Action& out) const {
  out = Action{};
  out.type = ActionType::Publish;
  out.topic_kind = ActionTopic::Presence;
  out.qos = 1;
  out.retain = true;
  out.payload = payload;
  out.len = kPresenceLen;
  encode_presence_now(0, payload);
}

void Agent::publish_presence(uint8_t status) {
  if (!connected_) return;
  uint8_t payload[kPresenceLen];
  encode_presence_now(status, payload);
  publish(ActionTopic::Presence, payload, kPresenceLen, 1, true, 0);
}

// --- reports and transitions ------------------------------------------------------------------------

void Agent::apply(AgentEvent event, Outcome outcome, Reason reason, uint32_t d0, uint32_t d1) {
  const Transition* t = find_transition(state_, event, outcome);
  if (t == nullptr) return;
  AgentState from = state_;
  state_ = t->to;
  last_reason_ = reason;
  if (t->report) emit_report(from, state_, event, reason, d0, d1);
}

void Agent::emit_report(AgentState from, AgentState to, AgentEvent event, Reason reason, uint32_t d0,
                        uint32_t d1) {
  StateReport r;
  r.from_state = static_cast<uint8_t>(from);
  r.to_state = static_cast<uint8_t>(to);
  r.event = static_cast<uint8_t>(event);
  r.epoch = progress_.epoch;
  r.seq = ++report_seq_;
  r.reason = static_cast<uint16_t>(reason);
  if (have_current_) {
    r.desired_seq = current_.desired_seq;
    std::memcpy(r.target_digest, current_.digest, 32);
  }
  std::memcpy(r.running_digest, running_.prefix_sha256, 32);
  r.detail0 = d0;
  r.detail1 = d1;
  r.device_time = ports_.clock.unix_seconds();

  // Queue until acknowledged; when full, the oldest is dropped (the server sees a gap in seq).
  QueuedReport* slot = &reports_[0];  // the first free slot, else the oldest report
  for (QueuedReport& q : reports_) {
    if (slot->seq != 0 && (q.seq == 0 || q.seq < slot->seq)) slot = &q;
  }
  slot->seq = r.seq;
  uint8_t full[kReportLen];
  encode_report(r, full);
  std::memcpy(slot->bytes, full, kRunningDigestAt);
  std::memcpy(slot->bytes + kRunningDigestAt, full + kAfterRunningDigest, kReportLen - kAfterRunningDigest);
  if (connected_) publish_report(*slot);
}

void Agent::publish_report(const QueuedReport& q) {
  uint8_t payload[kReportLen];
  std::memcpy(payload, q.bytes, kRunningDigestAt);
  std::memcpy(payload + kRunningDigestAt, running_.prefix_sha256, 32);
  std::memcpy(payload + kAfterRunningDigest, q.bytes + kRunningDigestAt, kReportLen - kAfterRunningDigest);
  publish(ActionTopic::State, payload, kReportLen, 1, false, q.seq);
}

uint32_t Agent::pending_reports() const {
  uint32_t n = 0;
  for (const QueuedReport& q : reports_) n += q.seq != 0 ? 1 : 0;
  return n;
}

void Agent::persist() {
  if (store_.available()) store_.store(progress_);
}

// --- events -----------------------------------------------------------------------------------------

// The update the progress record says was attempted becomes the one this run reports on.
void Agent::adopt_attempt() {
  have_current_ = true;
  reset_in_place(current_);
  current_.desired_seq = progress_.attempt_desired_seq;
  std::memcpy(current_.digest, progress_.attempt_digest, 32);
}

void Agent::on_boot(const BootDecision& d) {
  booted_ = true;
  running_bank_ = d.bank;
  running_trial_ = d.trial;
  running_ = d.record.images[d.bank];
  other_ = d.record.images[1 - d.bank];
  stored_counter_ = d.record.security_counter;
  if (store_.load(progress_) != Status::Ok) reset_in_place(progress_);
  progress_.epoch += 1;

  Outcome outcome = Outcome::Confirmed;
  Reason reason = Reason::None;
  uint32_t d0 = 0, d1 = 0;
  const bool attempt_is_running = digest_eq(progress_.attempt_digest, running_.prefix_sha256);
  if (d.trial) {
    outcome = Outcome::TrialBoot;
    boot_ms_ = ports_.clock.monotonic_ms();
    vectors_passed_ = false;
    broker_reached_ = false;
    if (progress_.attempt == AttemptState::TrialPending && attempt_is_running) {
      adopt_attempt();
      current_.total_len = running_.total_len;
    }
  } else if (progress_.attempt == AttemptState::TrialPending && !attempt_is_running) {
    // The trial never confirmed: boot selection went back to the confirmed image.
    outcome = Outcome::Reverted;
    reason = Reason::TrialExhausted;
    progress_.attempt = AttemptState::Failed;
    progress_.attempt_reason = static_cast<uint16_t>(reason);
    progress_.attempt_reported = true;
  } else if (progress_.attempt == AttemptState::TrialPending) {
    progress_.attempt = AttemptState::None;  // confirmed just before a reboot
  } else if (progress_.attempt == AttemptState::Failed && !progress_.attempt_reported) {
    // The health check failed and reverted before the reboot: report it from the old image.
    outcome = Outcome::Reverted;
    reason = static_cast<Reason>(progress_.attempt_reason);
    d0 = progress_.attempt_detail0;
    d1 = progress_.attempt_detail1;
    progress_.attempt_reported = true;
  } else if (d.reverted) {
    outcome = Outcome::Reverted;
    reason = Reason::TrialExhausted;
  }
  if (outcome == Outcome::Reverted && progress_.attempt == AttemptState::Failed) adopt_attempt();
  persist();
  load_running_components();
  apply(AgentEvent::Boot, outcome, reason, d0, d1);
  if (outcome == Outcome::Reverted) have_current_ = false;
  if (state_ == AgentState::Trial) signal(ActionType::RunHealthCheck);
}

void Agent::on_connection_up() {
  connected_ = true;
  publish_presence(1);
  subscribe(true, ActionTopic::Desired);
  // Re-send unacknowledged reports, oldest first.
  uint32_t last = 0;
  for (;;) {
    const QueuedReport* next = nullptr;
    for (const QueuedReport& q : reports_) {
      if (q.seq > last && (next == nullptr || q.seq < next->seq)) next = &q;
    }
    if (next == nullptr) break;
    publish_report(*next);
    last = next->seq;
  }
  if (state_ == AgentState::Checking && have_current_) {
    subscribe(true, ActionTopic::Meta, current_.digest);
  } else if (state_ == AgentState::Downloading) {
    fill_window();
  } else if (state_ == AgentState::Trial) {
    broker_reached_ = true;
    if (vectors_passed_) confirm_trial(AgentEvent::ConnectionUp);
  }
}

void Agent::on_connection_down() {
  connected_ = false;
  for (InFlight& f : inflight_) f.used = false;  // clean start: the broker forgets our subscriptions
}

void Agent::on_publish_acked(uint32_t token) {
  for (QueuedReport& q : reports_) {
    if (q.seq != 0 && q.seq == token) q.seq = 0;
  }
}

void Agent::on_message(const char* topic, size_t topic_len, const uint8_t* payload, size_t len) {
  if (!booted_) return;
  ParsedTopic t = parse_topic(topic, topic_len, cfg_.device_id);
  switch (t.kind) {
    case TopicKind::Desired:
      handle_desired(payload, len);
      break;
    case TopicKind::Meta:
      if (state_ == AgentState::Checking && have_current_ && digest_eq(t.digest, current_.digest)) {
        handle_meta(payload, len);
      }
      break;
    case TopicKind::Block:
      if (state_ == AgentState::Downloading) handle_block(t, payload, len);
      break;
    case TopicKind::Unknown:
      break;
  }
}

void Agent::on_tick() {
  const uint32_t now = ports_.clock.monotonic_ms();
  if (state_ == AgentState::Deferred && now - deferred_since_ms_ >= cfg_.battery_retry_ms) {
    deferred_since_ms_ = now;
    try_start_download(AgentEvent::Tick, ports_.power.battery_pct());
  } else if (state_ == AgentState::Trial && now - boot_ms_ >= cfg_.broker_timeout_ms) {
    // A trial is time-bounded: the broker and the health check's result must both be in by the deadline.
    if (!broker_reached_) {
      fail_trial(AgentEvent::Tick, Reason::HealthBrokerTimeout, cfg_.broker_timeout_ms / 1000, 0);
    } else if (!vectors_passed_) {
      fail_trial(AgentEvent::Tick, Reason::HealthInference, 0, 0);
    }
  }
  if (state_ != AgentState::Rebooting) maybe_publish_telemetry(now);
}

// A component of the running bank read into the prefix buffer: its length, or 0 if absent, too large or unread.
size_t Agent::read_running_component(const BundleInfo& running, ComponentType type) {
  const int i = running.find(type);
  if (i < 0) return 0;
  const ComponentEntry& e = running.components[i];
  if (e.length > sizeof(prefix_) || ports_.flash.read(bank_area(running_bank_), e.offset, prefix_, e.length) !=
                                        Status::Ok) {
    return 0;
  }
  return e.length;
}

void Agent::load_running_components() {
  reset_in_place(cal_);
  reset_in_place(thresholds_);
  FlashArea area = bank_area(running_bank_);
  BundleHeader h;
  uint8_t digest[32];
  active_known_ = false;
  active_count_ = 0;
  // The prefix buffer and info_ are free scratch at boot (no update is in progress). Boot selection verified
  // the running image; its prefix digest is checked again so the table we copy from is the one the
  // metadata names.
  BundleInfo& running = info_;
  if (running_.total_len != 0 && ports_.flash.read(area, 0, prefix_, kHeaderLen) == Status::Ok &&
      parse_header(prefix_, kHeaderLen, h) == Status::Ok && h.payload_offset <= sizeof(prefix_) &&
      ports_.flash.read(area, 0, prefix_, h.payload_offset) == Status::Ok &&
      parse_prefix(prefix_, h.payload_offset, running) == Status::Ok) {
    sha256(ports_.crypto, prefix_, h.payload_offset, digest);
    active_known_ = bytes_equal_ct(digest, running_.prefix_sha256, 32);
  }
  if (active_known_) {
    output_dtype_ = running.manifest.output.dtype;
    active_health_ = health_contract(running);
    active_count_ = running.component_count;
    active_table_ = kHeaderLen + running.header.manifest_len;
    for (uint8_t i = 0; i < active_count_; ++i) {
      active_[i].offset = running.components[i].offset;
      active_[i].length = running.components[i].length;
    }
    size_t len = read_running_component(running, ComponentType::Calibration);
    if (len != 0 && parse_calibration(prefix_, len, cal_) != Status::Ok) reset_in_place(cal_);
    len = read_running_component(running, ComponentType::Thresholds);
    if (len != 0 && parse_thresholds(prefix_, len, thresholds_) != Status::Ok) reset_in_place(thresholds_);
  }
  reset_in_place(info_);
  ring_.reset(cal_);
  drift_.reset(cal_.channel_count, ports_.clock.unix_seconds());
  window_ms_ = ports_.clock.monotonic_ms();
  window_seq_ = 0;
}

// A running component's SHA-256 from the running bank's table (verified at boot: the bank is not written
// while it runs).
bool Agent::running_component_sha256(uint8_t index, uint8_t out[32]) {
  return ports_.flash.read(bank_area(running_bank_), active_table_ + kEntryLen * index + kEntrySha256At, out, 32) ==
         Status::Ok;
}

void Agent::attach_sample_ring(int16_t* storage, uint32_t samples) {
  ring_.attach(storage, samples);
  if (cal_.channel_count != 0) ring_.reset(cal_);
}

void Agent::on_samples(const int16_t* raw, uint32_t frames) {
  int16_t calibrated[kMaxChannels];
  if (cal_.channel_count == 0) return;
  for (uint32_t f = 0; f < frames; ++f) {
    ring_.push(raw + static_cast<size_t>(f) * cal_.channel_count, calibrated);
    drift_.add_frame(calibrated);
  }
}

Decision Agent::on_inference(const uint8_t* output, size_t len, uint32_t latency_us) {
  Decision d = decide(thresholds_, output, len, output_dtype_);
  drift_.add_inference(d, latency_us);
  return d;
}

void Agent::maybe_publish_telemetry(uint32_t now_ms) {
  const uint32_t elapsed = now_ms - window_ms_;
  if (!connected_ || (elapsed < cfg_.telemetry_period_s * 1000u && !drift_.full())) return;
  uint8_t payload[kMaxTelemetryLen];
  const size_t len = drift_.encode(payload, progress_.epoch, ++window_seq_, elapsed / 1000, running_.prefix_sha256);
  publish(ActionTopic::Telemetry, payload, len, 0, false, 0);
  drift_.reset(cal_.channel_count, ports_.clock.unix_seconds());
  window_ms_ = now_ms;
}

void Agent::on_battery(uint8_t pct) {
  if (state_ == AgentState::Deferred && pct >= info_.manifest.min_battery_pct) {
    try_start_download(AgentEvent::Battery, pct);
  }
}

void Agent::on_health_result(const HealthOutcome& result) {
  handle_health(result);
}

void Agent::run_health_check() {
  if (state_ != AgentState::Trial) return;
  HealthOutcome result;  // HealthInference until the vectors ran
  if (active_known_) {
    result = run_health_vectors(ports_.flash, bank_area(running_bank_), active_health_, ports_.inference, prefix_);
  }
  handle_health(result);
}

void Agent::handle_health(const HealthOutcome& result) {
  if (state_ != AgentState::Trial) return;
  if (!result.passed()) {
    fail_trial(AgentEvent::HealthResult, result.reason, result.detail0, result.detail1);
    return;
  }
  vectors_passed_ = true;
  if (broker_reached_) confirm_trial(AgentEvent::HealthResult);
}

// --- trial ------------------------------------------------------------------------------------------

void Agent::confirm_trial(AgentEvent event) {
  if (boot_.confirm() != Status::Ok) {
    fail_trial(event, Reason::FlashError, 0, 0);
    return;
  }
  MetadataRecord rec;
  if (boot_.store().load(rec) == Status::Ok) stored_counter_ = rec.security_counter;
  running_trial_ = false;
  progress_.attempt = AttemptState::None;
  persist();
  apply(event, Outcome::Pass, Reason::Confirmed);
  publish_presence(1);
  if (have_desired_) evaluate_desired();
}

void Agent::fail_trial(AgentEvent event, Reason reason, uint32_t d0, uint32_t d1) {
  boot_.revert();
  progress_.attempt = AttemptState::Failed;
  progress_.attempt_reason = static_cast<uint16_t>(reason);
  progress_.attempt_reported = false;
  progress_.attempt_detail0 = d0;
  progress_.attempt_detail1 = d1;
  persist();
  apply(event, Outcome::Fail, reason, d0, d1);
  request_reboot();
}

void Agent::request_reboot() {
  publish_presence(2);
  signal(ActionType::Reboot);
}

// --- desired state ----------------------------------------------------------------------------------

void Agent::handle_desired(const uint8_t* payload, size_t len) {
  if (len == 0) {  // retained desired state cleared: nothing to do
    have_desired_ = false;
    return;
  }
  if (decode_desired(payload, len, latest_) != Status::Ok) {  // latest_ is untouched then
    apply(AgentEvent::Desired, Outcome::Stale, Reason::BadDesired);
    return;
  }
  have_desired_ = true;
  if (state_ == AgentState::Trial || state_ == AgentState::Rebooting) return;  // after the trial resolves
  evaluate_desired();
}

void Agent::evaluate_desired() {
  const DesiredState d = latest_;
  if (d.desired_seq < progress_.highest_desired_seq) {
    apply(AgentEvent::Desired, Outcome::Stale, Reason::StaleDesired, d.desired_seq, progress_.highest_desired_seq);
    return;
  }
  if (have_current_ && current_.desired_seq == d.desired_seq && digest_eq(current_.digest, d.digest)) return;
  const bool superseding = state_ == AgentState::Checking || state_ == AgentState::Deferred ||
                           state_ == AgentState::Downloading;
  if (superseding) abandon_download();
  current_ = d;
  have_current_ = true;
  if (d.desired_seq > progress_.highest_desired_seq) {
    progress_.highest_desired_seq = d.desired_seq;
    persist();
  }
  if (digest_eq(d.digest, running_.prefix_sha256)) {
    apply(AgentEvent::Desired, Outcome::UpToDate, Reason::UpToDate);
    return;
  }
  if (progress_.attempt == AttemptState::Failed && progress_.attempt_desired_seq == d.desired_seq &&
      digest_eq(progress_.attempt_digest, d.digest)) {
    apply(AgentEvent::Desired, Outcome::Refused, Reason::PreviouslyFailed);
    return;
  }
  const uint32_t bank_size = ports_.flash.geometry(bank_area(static_cast<uint8_t>(1 - running_bank_))).size;
  if (d.total_len > bank_size || block_count(d.total_len) > TINYFLEET_MAX_BLOCKS) {
    apply(AgentEvent::Desired, Outcome::Refused, Reason::TooLarge, d.total_len, bank_size);
    return;
  }
  apply(AgentEvent::Desired, Outcome::NewUpdate, superseding ? Reason::Superseded : Reason::None,
        superseding ? d.desired_seq : 0);
  if (connected_) subscribe(true, ActionTopic::Meta, d.digest);
}

void Agent::abandon_download() {
  if (state_ == AgentState::Checking && have_current_ && connected_) {
    subscribe(false, ActionTopic::Meta, current_.digest);
  }
  for (InFlight& f : inflight_) {
    if (f.used && connected_) subscribe(false, ActionTopic::Block, info_.components[f.component].sha256, f.block);
    f.used = false;
  }
}

// --- meta and preconditions -------------------------------------------------------------------------

void Agent::handle_meta(const uint8_t* payload, size_t len) {
  if (connected_) subscribe(false, ActionTopic::Meta, current_.digest);

  uint8_t digest[32];
  BundleHeader h;
  if (len < kHeaderLen || len > TINYFLEET_PREFIX_BUFFER_SIZE) {
    apply(AgentEvent::Meta, Outcome::Refused, Reason::MetaMismatch);
    return;
  }
  sha256(ports_.crypto, payload, len, digest);
  if (!bytes_equal_ct(digest, current_.digest, 32)) {
    apply(AgentEvent::Meta, Outcome::Refused, Reason::MetaMismatch);
    return;
  }
  Status s = parse_header(payload, len, h);
  if (s != Status::Ok) {
    apply(AgentEvent::Meta, Outcome::Refused, reason_from_status(s));
    return;
  }
  if (h.payload_offset != len || h.total_len != current_.total_len) {
    apply(AgentEvent::Meta, Outcome::Refused, Reason::MetaMismatch);
    return;
  }
  std::memcpy(prefix_, payload, len);
  VerifyPolicy policy;
  policy.hardware_class = cfg_.hardware_class;
  policy.device_id = cfg_.device_id;
  policy.min_counter = stored_counter_;
  policy.now = ports_.clock.unix_seconds();
  policy.keys = cfg_.keys;
  policy.key_count = cfg_.key_count;
  s = parse_prefix(prefix_, len, info_);
  if (s == Status::Ok) s = check_signature(info_, prefix_, ports_.crypto, policy);
  if (s == Status::Ok) s = check_policy(info_, policy);
  if (s != Status::Ok) {
    const bool counter = s == Status::CounterTooLow;
    apply(AgentEvent::Meta, Outcome::Refused, reason_from_status(s),
          counter ? info_.manifest.security_counter : 0, counter ? stored_counter_ : 0);
    return;
  }
  const uint32_t bank_size = ports_.flash.geometry(bank_area(static_cast<uint8_t>(1 - running_bank_))).size;
  if (info_.header.total_len > bank_size) {
    apply(AgentEvent::Meta, Outcome::Refused, Reason::TooLarge, info_.header.total_len, bank_size);
    return;
  }
  deferred_since_ms_ = ports_.clock.monotonic_ms();
  try_start_download(AgentEvent::Meta, ports_.power.battery_pct());
}

void Agent::try_start_download(AgentEvent event, uint8_t battery_pct) {
  if (battery_pct < info_.manifest.min_battery_pct) {
    apply(event, Outcome::BatteryLow, Reason::BatteryLow, battery_pct, info_.manifest.min_battery_pct);
    return;
  }
  Reason reason = Reason::None;
  uint32_t d0 = 0, d1 = 0;
  Outcome o = start_download(reason, d0, d1);
  apply(event, o, reason, d0, d1);
  if (state_ == AgentState::Downloading) fill_window();
  if (state_ == AgentState::Rebooting) request_reboot();
}

// --- download ---------------------------------------------------------------------------------------

bool Agent::block_done(uint8_t c, uint32_t b) const {
  uint32_t bit = block_base_[c] + b;
  return (progress_.bitmap[bit / 8] >> (bit % 8)) & 1;
}

void Agent::set_block(uint8_t c, uint32_t b, bool done) {
  uint32_t bit = block_base_[c] + b;
  if (done) {
    progress_.bitmap[bit / 8] = static_cast<uint8_t>(progress_.bitmap[bit / 8] | (1u << (bit % 8)));
  } else {
    progress_.bitmap[bit / 8] = static_cast<uint8_t>(progress_.bitmap[bit / 8] & ~(1u << (bit % 8)));
  }
}

void Agent::set_component(uint8_t c, bool done) {
  const uint32_t n = block_count(info_.components[c].length);
  for (uint32_t b = 0; b < n; ++b) set_block(c, b, done);
}

bool Agent::component_complete(uint8_t c) const {
  const uint32_t n = block_count(info_.components[c].length);
  for (uint32_t b = 0; b < n; ++b) {
    if (!block_done(c, b)) return false;
  }
  return true;
}

uint32_t Agent::blocks_present() const {
  uint32_t n = 0;
  for (uint32_t bit = 0; bit < total_blocks_; ++bit) n += (progress_.bitmap[bit / 8] >> (bit % 8)) & 1;
  return n;
}

void Agent::clear_range(uint32_t lo, uint32_t hi) {
  for (uint8_t c = 0; c < info_.component_count; ++c) {
    const ComponentEntry& e = info_.components[c];
    const uint32_t n = block_count(e.length);
    for (uint32_t b = 0; b < n; ++b) {
      const uint32_t start = e.offset + b * kBlockSize;
      const uint32_t end = start + block_data_len(e.length, b);
      if (start < hi && lo < end) set_block(c, b, false);
    }
  }
}

// A power cut while a sector holding the prefix was being erased leaves the bank's prefix damaged with
// every payload block still marked present: such a bank is not resumed but rewritten.
bool Agent::bank_prefix_intact(uint8_t bank) {
  uint8_t chunk[64];
  const uint32_t poff = info_.header.payload_offset;
  for (uint32_t off = 0; off < poff; off += sizeof(chunk)) {
    const uint32_t n = poff - off < sizeof(chunk) ? poff - off : static_cast<uint32_t>(sizeof(chunk));
    if (ports_.flash.read(bank_area(bank), off, chunk, n) != Status::Ok) return false;
    if (std::memcmp(chunk, prefix_ + off, n) != 0) return false;
  }
  return true;
}

Outcome Agent::start_download(Reason& reason, uint32_t& d0, uint32_t& d1) {
  const uint8_t bank = static_cast<uint8_t>(1 - running_bank_);
  total_blocks_ = 0;
  for (uint8_t c = 0; c < info_.component_count; ++c) {
    block_base_[c] = total_blocks_;
    total_blocks_ += block_count(info_.components[c].length);
  }
  if (total_blocks_ > TINYFLEET_MAX_BLOCKS) {
    reason = Reason::TooLarge;
    d0 = info_.header.total_len;
    return Outcome::Refused;
  }
  // Going back to the bundle the inactive bank still holds (a rollback): verify it in place against the
  // meta just verified (read-only: prefix_ and info_ stay those of the signed meta), fetch nothing.
  ImageDescriptor in_place;
  if (other_.total_len != 0 && digest_eq(other_.prefix_sha256, current_.digest) && bank_prefix_intact(bank) &&
      writer_.resume(bank, info_, prefix_) == Status::Ok && writer_.finish(in_place) == Status::Ok &&
      boot_.install_trial(bank, in_place) == Status::Ok) {
    record_trial_pending();
    reason = Reason::Staged;
    d0 = d1 = total_blocks_;
    return Outcome::Staged;
  }
  const bool resume = progress_.downloading && progress_.download_bank == bank &&
                      digest_eq(progress_.download_digest, current_.digest) &&
                      progress_.download_blocks == total_blocks_ && bank_prefix_intact(bank);
  Status s = resume ? writer_.resume(bank, info_, prefix_) : writer_.begin(bank, info_, prefix_);
  if (s != Status::Ok) {
    reason = reason_from_status(s);
    if (s == Status::BundleTooLarge) {
      d0 = info_.header.total_len;
      d1 = ports_.flash.geometry(bank_area(bank)).size;
    }
    return Outcome::Refused;
  }
  if (!resume) {
    std::memset(progress_.bitmap, 0, sizeof(progress_.bitmap));
    progress_.downloading = true;
    progress_.download_bank = bank;
    progress_.download_desired_seq = current_.desired_seq;
    std::memcpy(progress_.download_digest, current_.digest, 32);
    progress_.download_blocks = total_blocks_;
  }
  std::memset(hash_failures_, 0, sizeof(hash_failures_));
  // Unchanged components: copy from the running bank (hash-checked while copying) instead of fetching.
  for (uint8_t c = 0; c < info_.component_count && active_known_; ++c) {
    if (component_complete(c)) continue;
    const ComponentEntry& want = info_.components[c];
    for (uint8_t a = 0; a < active_count_; ++a) {
      const RunningComponent& have = active_[a];
      uint8_t have_sha256[32];
      if (have.length != want.length || !running_component_sha256(a, have_sha256) ||
          !digest_eq(have_sha256, want.sha256)) {
        continue;
      }
      uint32_t lo = 0, hi = 0;
      const Status copied = writer_.copy_component(c, running_bank_, have.offset, &lo, &hi);
      if (lo < hi) clear_range(lo, hi);  // neighbours' blocks in a wiped shared sector are fetched again
      if (copied == Status::Ok) {
        set_component(c, true);
      }
      break;
    }
  }
  // On a resumed bank, bits may be stale (a cut during an erase, or during a copy's erase): trust only
  // components whose hash checks out now.
  for (uint8_t c = 0; c < info_.component_count && resume; ++c) {
    if (component_complete(c) && writer_.verify_component(c) != Status::Ok) {
      set_component(c, false);
    }
  }
  persist();
  reason = resume ? Reason::Resumed : Reason::None;
  d0 = blocks_present();
  d1 = total_blocks_;
  if (d0 == total_blocks_) {
    Outcome o = finish_image(reason);
    return o == Outcome::Staged ? o : Outcome::Refused;
  }
  return Outcome::Accepted;
}

// The staged image is the trial the next boot runs: recorded so that boot can tell a confirm from a revert.
void Agent::record_trial_pending() {
  progress_.downloading = false;
  progress_.attempt = AttemptState::TrialPending;
  progress_.attempt_reason = 0;
  progress_.attempt_desired_seq = current_.desired_seq;
  std::memcpy(progress_.attempt_digest, current_.digest, 32);
  persist();
}

Outcome Agent::finish_image(Reason& reason) {
  ImageDescriptor desc;
  Status s = writer_.finish(desc);
  if (s == Status::Ok) s = boot_.install_trial(writer_.bank(), desc);
  if (s != Status::Ok) {
    reason = reason_from_status(s);
    return Outcome::Failed;
  }
  record_trial_pending();
  reason = Reason::Staged;
  return Outcome::Staged;
}

void Agent::fill_window() {
  if (!connected_ || state_ != AgentState::Downloading) return;
  for (InFlight& slot : inflight_) {
    if (slot.used) continue;
    bool found = false;
    for (uint8_t c = 0; c < info_.component_count && !found; ++c) {
      const uint32_t n = block_count(info_.components[c].length);
      for (uint32_t b = 0; b < n && !found; ++b) {
        if (block_done(c, b)) continue;
        bool busy = false;
        for (const InFlight& f : inflight_) busy = busy || (f.used && f.component == c && f.block == b);
        if (busy) continue;
        slot.used = true;
        slot.component = c;
        slot.block = b;
        found = true;
      }
    }
    if (!found) return;
    subscribe(true, ActionTopic::Block, info_.components[slot.component].sha256, slot.block);
  }
}

void Agent::handle_block(const ParsedTopic& t, const uint8_t* payload, size_t len) {
  int found = -1;
  for (uint8_t c = 0; c < info_.component_count; ++c) {
    if (digest_eq(info_.components[c].sha256, t.digest) && t.index < block_count(info_.components[c].length) &&
        !block_done(c, t.index)) {
      found = c;
      break;
    }
  }
  if (found < 0) return;  // late, duplicate or not ours
  const uint8_t c = static_cast<uint8_t>(found);
  const ComponentEntry& e = info_.components[c];
  InFlight* slot = nullptr;
  for (InFlight& f : inflight_) {
    if (f.used && f.component == c && f.block == t.index) slot = &f;
  }

  BlockHeader h;
  const uint8_t* data = nullptr;
  size_t dlen = 0;
  if (decode_block(payload, len, h, data, dlen) != Status::Ok || h.index != t.index || h.component_len != e.length) {
    ++bad_blocks_;
    if (slot != nullptr && connected_) {  // the broker redelivers the retained block on a new SUBSCRIBE
      subscribe(false, ActionTopic::Block, e.sha256, t.index);
      subscribe(true, ActionTopic::Block, e.sha256, t.index);
    }
    return;
  }
  uint32_t lo = 0, hi = 0;
  Status s = writer_.write(e.offset + t.index * kBlockSize, data, dlen, &lo, &hi);
  if (s != Status::Ok) {
    abandon_download();
    apply(AgentEvent::Block, Outcome::Failed, reason_from_status(s));
    return;
  }
  if (lo < hi) clear_range(lo, hi);
  set_block(c, t.index, true);
  ++blocks_fetched_;
  if (slot != nullptr) {
    slot->used = false;
    if (connected_) subscribe(false, ActionTopic::Block, e.sha256, t.index);
  }
  // Blocks written since the last record are fetched again after a reboot (their bytes are not erased:
  // the bank writer erases and reports them), so checkpointing less often trades refetches for wear.
  const bool complete = component_complete(c);
  if (++unsaved_blocks_ >= cfg_.checkpoint_every_blocks || complete) {
    persist();
    unsaved_blocks_ = 0;
  }

  if (complete) {
    s = writer_.verify_component(c);
    if (s == Status::Ok) {
      apply(AgentEvent::Block, Outcome::ComponentReady, Reason::ComponentReady, c, block_count(e.length));
    } else if (s == Status::HashMismatch && hash_failures_[c] < cfg_.max_hash_retries) {
      ++hash_failures_[c];
      set_component(c, false);
      persist();
    } else {
      abandon_download();
      apply(AgentEvent::Block, Outcome::Failed, reason_from_status(s), c, 0);
      return;
    }
  }
  if (blocks_present() == total_blocks_) {
    Reason reason = Reason::None;
    Outcome o = finish_image(reason);
    abandon_download();
    apply(AgentEvent::Block, o, reason);
    if (state_ == AgentState::Rebooting) request_reboot();
    return;
  }
  fill_window();
}

}  // namespace tinyfleet
