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

// Helpers called from one place are defined `inline`: each is a step with a name, compiled into its caller
// (one copy of the code: the core's flash budget, docs/footprint.md).

// --- actions ----------------------------------------------------------------------------------------

void Agent::signal(ActionType type) {
  Action a{};
  a.type = type;
  a.topic_kind = ActionTopic::None;
  ports_.actions.perform(a);
}

void Agent::subscribe(Sub op, ActionTopic kind, const uint8_t* digest, uint32_t block) {
  Action a{};
  a.type = op == Sub::Off ? ActionType::Unsubscribe : ActionType::Subscribe;
  a.topic_kind = kind;
  a.qos = 1;
  a.retain_handling = op == Sub::Renew ? 1 : 0;
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
  p.last_seq = reports_.last_seq();
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
  r.seq = reports_.next_seq();
  r.reason = static_cast<uint16_t>(reason);
  if (have_current_) {
    r.desired_seq = current_.desired_seq;
    std::memcpy(r.target_digest, current_.digest, 32);
  }
  std::memcpy(r.running_digest, running_.prefix_sha256, 32);
  r.detail0 = d0;
  r.detail1 = d1;
  r.device_time = ports_.clock.unix_seconds();

  uint8_t full[kReportLen];
  encode_report(r, full);
  const ReportQueue::Entry& queued = reports_.push(r.seq, full);  // until acknowledged
  if (connected_) publish_report(queued);
}

void Agent::publish_report(const ReportQueue::Entry& e) {
  uint8_t payload[kReportLen];
  ReportQueue::render(e, running_.prefix_sha256, payload);
  publish(ActionTopic::State, payload, kReportLen, 1, false, e.seq);
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

// A resumed session (session_present) still holds this boot's subscriptions and what reached them while the
// device was away: queued messages and those in flight when the connection died, which the broker sends
// again. The device re-subscribes them all the same, with Retain Handling 1: a SUBSCRIBE the lost
// connection swallowed is repaired, and a subscription the broker holds gets no second copy of its
// retained message. Without a session the broker holds nothing: every subscription starts afresh.
void Agent::on_connection_up(bool session_present) {
  connected_ = true;
  session_ = true;
  const Sub sub = session_present ? Sub::Renew : Sub::On;
  publish_presence(1);
  subscribe(sub, ActionTopic::Desired);
  // Re-send unacknowledged reports, oldest first.
  for (const ReportQueue::Entry* e = reports_.oldest_after(0); e != nullptr; e = reports_.oldest_after(e->seq)) {
    publish_report(*e);
  }
  if (state_ == AgentState::Checking && have_current_) {
    subscribe(sub, ActionTopic::Meta, current_.digest);
  } else if (state_ == AgentState::Downloading) {
    fill_window(sub);
  } else if (state_ == AgentState::Trial) {
    broker_reached_ = true;
    if (vectors_passed_) confirm_trial(AgentEvent::ConnectionUp);
  }
}

// The block window is claimed again at the next CONNACK, from the bitmap: the lowest missing blocks, which
// are the ones in flight now unless a component is being fetched again.
void Agent::on_connection_down() {
  connected_ = false;
  download_.release_all([](const DownloadSession::Slot&) {});
}

void Agent::on_publish_acked(uint32_t token) { reports_.acknowledge(token); }

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

inline void Agent::load_running_components() {
  inference_.forget_model();
  // The prefix buffer and the download's table are free scratch at boot (no update is in progress). Boot
  // selection verified the running image; its prefix digest is checked again so the table we copy from is
  // the one the metadata names.
  BundleInfo& table = download_.info();
  if (running_bundle_.load(ports_.flash, ports_.crypto, running_bank_, running_, prefix_, sizeof(prefix_), table)) {
    inference_.set_output_dtype(table.manifest.output.dtype);
    size_t len = RunningBundle::read_component(ports_.flash, running_bank_, table, ComponentType::Calibration,
                                               prefix_, sizeof(prefix_));
    if (len != 0) inference_.load_calibration(prefix_, len);
    len = RunningBundle::read_component(ports_.flash, running_bank_, table, ComponentType::Thresholds, prefix_,
                                        sizeof(prefix_));
    if (len != 0) inference_.load_thresholds(prefix_, len);
  }
  reset_in_place(table);
  const uint64_t unix_s = ports_.clock.unix_seconds();
  inference_.start(unix_s, ports_.clock.monotonic_ms());
}

inline void Agent::maybe_publish_telemetry(uint32_t now_ms) {
  if (!connected_) return;
  uint8_t payload[kMaxTelemetryLen];
  const size_t len =
      inference_.close_window(now_ms, cfg_.telemetry_period_s, progress_.epoch, running_.prefix_sha256, payload);
  if (len == 0) return;
  publish(ActionTopic::Telemetry, payload, len, 0, false, 0);
  inference_.next_window(ports_.clock.unix_seconds(), now_ms);
}

void Agent::on_battery(uint8_t pct) {
  if (state_ == AgentState::Deferred && pct >= download_.info().manifest.min_battery_pct) {
    try_start_download(AgentEvent::Battery, pct);
  }
}

void Agent::on_health_result(const HealthOutcome& result) {
  handle_health(result);
}

void Agent::run_health_check() {
  if (state_ != AgentState::Trial) return;
  HealthOutcome result;  // HealthInference until the vectors ran
  if (running_bundle_.known()) {
    result = run_health_vectors(ports_.flash, bank_area(running_bank_), running_bundle_.health(), ports_.inference,
                                prefix_);
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
  if (connected_) subscribe(Sub::On, ActionTopic::Meta, d.digest);
}

void Agent::abandon_download() {
  if (state_ == AgentState::Checking && have_current_ && connected_) {
    subscribe(Sub::Off, ActionTopic::Meta, current_.digest);
  }
  download_.release_all([this](const DownloadSession::Slot& f) {
    if (connected_) subscribe(Sub::Off, ActionTopic::Block, download_.info().components[f.component].sha256, f.block);
  });
}

// --- meta and preconditions -------------------------------------------------------------------------

void Agent::handle_meta(const uint8_t* payload, size_t len) {
  if (connected_) subscribe(Sub::Off, ActionTopic::Meta, current_.digest);

  uint8_t digest[32];
  if (len < kHeaderLen || len > TINYFLEET_PREFIX_BUFFER_SIZE) {
    apply(AgentEvent::Meta, Outcome::Refused, Reason::MetaMismatch);
    return;
  }
  sha256(ports_.crypto, payload, len, digest);
  if (!bytes_equal_ct(digest, current_.digest, 32)) {
    apply(AgentEvent::Meta, Outcome::Refused, Reason::MetaMismatch);
    return;
  }
  std::memcpy(prefix_, payload, len);
  BundleInfo& info = download_.info();
  // A header error is reported as such; then the meta must be exactly the prefix of the bundle the desired
  // state announced (NeedMoreBytes: shorter than its payload_offset).
  Status s = parse_prefix(prefix_, len, info);
  if ((s == Status::Ok || s == Status::NeedMoreBytes) &&
      (info.header.payload_offset != len || info.header.total_len != current_.total_len)) {
    apply(AgentEvent::Meta, Outcome::Refused, Reason::MetaMismatch);
    return;
  }
  VerifyPolicy policy;
  policy.hardware_class = cfg_.hardware_class;
  policy.device_id = cfg_.device_id;
  policy.min_counter = stored_counter_;
  policy.now = ports_.clock.unix_seconds();
  policy.keys = cfg_.keys;
  policy.key_count = cfg_.key_count;
  if (s == Status::Ok) s = check_signature(info, prefix_, ports_.crypto, policy);
  // Another digest for the content this device runs (the same signed region, another signature): there is
  // nothing to install, whatever the policy would say of installing it.
  if (s == Status::Ok && bank_holds_prefix(running_bank_, info.header.signed_len)) {
    apply(AgentEvent::Meta, Outcome::UpToDate, Reason::UpToDate);
    return;
  }
  if (s == Status::Ok) s = check_policy(info, policy);
  if (s != Status::Ok) {
    const bool counter = s == Status::CounterTooLow;
    apply(AgentEvent::Meta, Outcome::Refused, reason_from_status(s),
          counter ? info.manifest.security_counter : 0, counter ? stored_counter_ : 0);
    return;
  }
  // No bank-size check here: total_len equals the desired state's, which evaluate_desired() checked.
  deferred_since_ms_ = ports_.clock.monotonic_ms();
  try_start_download(AgentEvent::Meta, ports_.power.battery_pct());
}

void Agent::try_start_download(AgentEvent event, uint8_t battery_pct) {
  const uint8_t min_pct = download_.info().manifest.min_battery_pct;
  if (battery_pct < min_pct) {
    apply(event, Outcome::BatteryLow, Reason::BatteryLow, battery_pct, min_pct);
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

// True if the bank's first `len` bytes are those of the verified meta in prefix_. With len = payload_offset:
// a power cut while a sector holding the prefix was being erased leaves the bank's prefix damaged with every
// payload block still marked present, and such a bank is not resumed but rewritten. With len = the signed
// region on the running bank: the meta carries the content the device runs (UpToDate).
bool Agent::bank_holds_prefix(uint8_t bank, uint32_t len) {
  uint8_t chunk[64];
  for (uint32_t off = 0; off < len; off += sizeof(chunk)) {
    const uint32_t n = len - off < sizeof(chunk) ? len - off : static_cast<uint32_t>(sizeof(chunk));
    if (ports_.flash.read(bank_area(bank), off, chunk, n) != Status::Ok) return false;
    if (std::memcmp(chunk, prefix_ + off, n) != 0) return false;
  }
  return true;
}

// Going back to the bundle the inactive bank still holds (a rollback): verify it in place against the meta
// just verified (read-only: the prefix buffer and the table stay those of the signed meta), fetch nothing.
inline bool Agent::stage_in_place(uint8_t bank) {
  ImageDescriptor in_place;
  if (other_.total_len != 0 && digest_eq(other_.prefix_sha256, current_.digest) &&
      bank_holds_prefix(bank, download_.info().header.payload_offset) &&
      writer_.resume(bank, download_.info(), prefix_) == Status::Ok && writer_.finish(in_place) == Status::Ok &&
      boot_.install_trial(bank, in_place) == Status::Ok) {
    record_trial_pending();
    return true;
  }
  return false;
}

// The bank writer on `bank`: resumed as the progress record left it, or erased for a new download.
inline Status Agent::open_bank(uint8_t bank, bool resume) {
  const BundleInfo& info = download_.info();
  Status s = resume ? writer_.resume(bank, info, prefix_) : writer_.begin(bank, info, prefix_);
  if (s == Status::Ok && !resume) {
    std::memset(progress_.bitmap, 0, sizeof(progress_.bitmap));
    progress_.downloading = true;
    progress_.download_bank = bank;
    progress_.download_desired_seq = current_.desired_seq;
    std::memcpy(progress_.download_digest, current_.digest, 32);
    progress_.download_blocks = download_.total_blocks();
  }
  return s;
}

// Unchanged components: copied from the running bank (hash-checked while copying) instead of fetched.
inline void Agent::copy_unchanged_components() {
  const BundleInfo& info = download_.info();
  const RunningBundle& have = running_bundle_;
  for (uint8_t c = 0; c < info.component_count && have.known(); ++c) {
    if (download_.component_complete(progress_.bitmap, c)) continue;
    const ComponentEntry& want = info.components[c];
    for (uint8_t a = 0; a < have.count(); ++a) {
      uint8_t have_sha256[32];
      if (have.length(a) != want.length || !have.component_sha256(ports_.flash, running_bank_, a, have_sha256) ||
          !digest_eq(have_sha256, want.sha256)) {
        continue;
      }
      uint32_t lo = 0, hi = 0;
      const Status copied = writer_.copy_component(c, running_bank_, have.offset(a), &lo, &hi);
      // Neighbours' blocks in a wiped shared sector are fetched again.
      if (lo < hi) download_.clear_range(progress_.bitmap, lo, hi);
      if (copied == Status::Ok) download_.set_component(progress_.bitmap, c, true);
      break;
    }
  }
}

// On a resumed bank, bits may be stale (a cut during an erase, or during a copy's erase): only components
// whose hash checks out now are trusted.
inline void Agent::drop_unverified_components() {
  for (uint8_t c = 0; c < download_.info().component_count; ++c) {
    if (download_.component_complete(progress_.bitmap, c) && writer_.verify_component(c) != Status::Ok) {
      download_.set_component(progress_.bitmap, c, false);
    }
  }
}

Outcome Agent::start_download(Reason& reason, uint32_t& d0, uint32_t& d1) {
  const uint8_t bank = static_cast<uint8_t>(1 - running_bank_);
  const BundleInfo& info = download_.info();
  if (!download_.plan()) {
    reason = Reason::TooLarge;
    d0 = info.header.total_len;
    return Outcome::Refused;
  }
  const uint32_t total = download_.total_blocks();
  if (stage_in_place(bank)) {
    reason = Reason::Staged;
    d0 = d1 = total;
    return Outcome::Staged;
  }
  const bool resume = progress_.downloading && progress_.download_bank == bank &&
                      digest_eq(progress_.download_digest, current_.digest) && progress_.download_blocks == total &&
                      bank_holds_prefix(bank, info.header.payload_offset);
  const Status s = open_bank(bank, resume);
  if (s != Status::Ok) {
    reason = reason_from_status(s);
    if (s == Status::BundleTooLarge) {
      d0 = info.header.total_len;
      d1 = ports_.flash.geometry(bank_area(bank)).size;
    }
    return Outcome::Refused;
  }
  copy_unchanged_components();
  if (resume) drop_unverified_components();
  persist();
  reason = resume ? Reason::Resumed : Reason::None;
  d0 = download_.blocks_present(progress_.bitmap);
  d1 = total;
  if (d0 == total) {
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

void Agent::fill_window(Sub op) {
  if (!connected_ || state_ != AgentState::Downloading) return;
  while (const DownloadSession::Slot* slot = download_.claim(progress_.bitmap)) {
    subscribe(op, ActionTopic::Block, download_.info().components[slot->component].sha256, slot->block);
  }
}

// A block's bytes into the bank; false (the download failed and is abandoned) if the write failed.
inline bool Agent::write_block(uint8_t c, uint32_t index, const uint8_t* data, size_t len) {
  uint32_t lo = 0, hi = 0;
  const Status s = writer_.write(download_.info().components[c].offset + index * kBlockSize, data, len, &lo, &hi);
  if (s != Status::Ok) {
    abandon_download();
    apply(AgentEvent::Block, Outcome::Failed, reason_from_status(s));
    return false;
  }
  if (lo < hi) download_.clear_range(progress_.bitmap, lo, hi);
  download_.set_block(progress_.bitmap, c, index, true);
  return true;
}

// A complete component's hash: true if it checks out, or it is fetched again; false if the download failed.
inline bool Agent::component_verified(uint8_t c) {
  const Status s = writer_.verify_component(c);
  if (s == Status::Ok) {
    const uint32_t blocks = block_count(download_.info().components[c].length);
    apply(AgentEvent::Block, Outcome::ComponentReady, Reason::ComponentReady, c, blocks);
    return true;
  }
  if (s == Status::HashMismatch && download_.retry(c, cfg_.max_hash_retries)) {
    download_.set_component(progress_.bitmap, c, false);
    persist();
    return true;
  }
  abandon_download();
  apply(AgentEvent::Block, Outcome::Failed, reason_from_status(s), c, 0);
  return false;
}

void Agent::handle_block(const ParsedTopic& t, const uint8_t* payload, size_t len) {
  const int found = download_.wanted(progress_.bitmap, t.digest, t.index);
  if (found < 0) return;  // late, duplicate or not ours
  const uint8_t c = static_cast<uint8_t>(found);
  const ComponentEntry& e = download_.info().components[c];
  DownloadSession::Slot* slot = download_.in_flight(c, t.index);

  BlockHeader h;
  const uint8_t* data = nullptr;
  size_t dlen = 0;
  if (decode_block(payload, len, h, data, dlen) != Status::Ok || h.index != t.index || h.component_len != e.length) {
    download_.block_dropped();
    if (slot != nullptr && connected_) {  // the broker redelivers the retained block on a new SUBSCRIBE
      subscribe(Sub::Off, ActionTopic::Block, e.sha256, t.index);
      subscribe(Sub::On, ActionTopic::Block, e.sha256, t.index);
    }
    return;
  }
  if (!write_block(c, t.index, data, dlen)) return;
  if (slot != nullptr) {
    slot->used = false;
    if (connected_) subscribe(Sub::Off, ActionTopic::Block, e.sha256, t.index);
  }
  // Blocks written since the last record are fetched again after a reboot (their bytes are not erased:
  // the bank writer erases and reports them), so checkpointing less often trades refetches for wear.
  const bool complete = download_.component_complete(progress_.bitmap, c);
  if (download_.block_written(cfg_.checkpoint_every_blocks, complete)) persist();
  if (complete && !component_verified(c)) return;
  if (download_.blocks_present(progress_.bitmap) == download_.total_blocks()) {
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
