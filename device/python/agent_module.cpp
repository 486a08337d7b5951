// tinyfleet._agent: the exact agent core (device/src/core) driven from Python, so fleet-sim runs the code
// devices run. The platform is a Python object (flash, battery, clocks, inference); the crypto port is
// mbedTLS; flash may instead be the C++ NOR emulator (flash_layout=...) when thousands of devices run.
// NorFlash is the NOR model (device/ports/nor) over sparse sectors: fleet-sim's flash keeps its bytes and
// applies its rules through it, so the simulator has no NOR rules of its own.
//
// The core is built without exceptions: a Python error raised inside a platform callback is caught here,
// turned into a port failure for the core, and re-raised when the core returns.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "flash_emulator.h"
#include "mbedtls_crypto.h"
#include "sparse_flash.h"
#include "tinyfleet/agent.h"
#include "tinyfleet/bank_writer.h"
#include "tinyfleet/boot.h"
#include "tinyfleet/features.h"
#include "tinyfleet/stream_verifier.h"

namespace nb = nanobind;
using namespace tinyfleet;

namespace {

// The Python platform behind the Flash, Power, Clock and Inference ports.
class PyPlatform final : public Flash, public Power, public Clock, public Inference {
 public:
  explicit PyPlatform(nb::object obj) : obj_(std::move(obj)) {}

  FlashGeometry geometry(FlashArea area) const override {
    FlashGeometry g;
    guard([&] {
      auto t = nb::cast<std::tuple<uint32_t, uint32_t, uint32_t, uint8_t>>(
          obj_.attr("flash_geometry")(static_cast<int>(area)));
      g.size = std::get<0>(t);
      g.sector_size = std::get<1>(t);
      g.write_align = std::get<2>(t);
      g.erased_value = std::get<3>(t);
    });
    return g;
  }
  Status read(FlashArea area, uint32_t offset, uint8_t* dst, size_t len) override {
    Status s = Status::FlashError;
    guard([&] {
      nb::bytes b = nb::cast<nb::bytes>(obj_.attr("flash_read")(static_cast<int>(area), offset, len));
      if (b.size() != len) throw nb::value_error("flash_read returned the wrong number of bytes");
      std::memcpy(dst, b.c_str(), len);
      s = Status::Ok;
    });
    return s;
  }
  Status write(FlashArea area, uint32_t offset, const uint8_t* src, size_t len) override {
    return status_of([&] {
      return obj_.attr("flash_write")(static_cast<int>(area), offset, nb::bytes(reinterpret_cast<const char*>(src), len));
    });
  }
  Status erase(FlashArea area, uint32_t offset, size_t len) override {
    return status_of([&] { return obj_.attr("flash_erase")(static_cast<int>(area), offset, len); });
  }
  uint8_t battery_pct() override {
    uint8_t v = 0;
    guard([&] { v = nb::cast<uint8_t>(obj_.attr("battery_pct")()); });
    return v;
  }
  void request_reboot() override {}  // the agent's Reboot action reaches Python as an action
  uint64_t unix_seconds() override {
    uint64_t v = 0;
    guard([&] { v = nb::cast<uint64_t>(obj_.attr("unix_seconds")()); });
    return v;
  }
  uint32_t monotonic_ms() override {
    uint32_t v = 0;
    guard([&] { v = static_cast<uint32_t>(nb::cast<uint64_t>(obj_.attr("monotonic_ms")()) & 0xFFFFFFFFu); });
    return v;
  }
  Status run(const uint8_t* input, size_t input_len, uint8_t* output, size_t output_len,
             InferenceResult& result) override {
    Status s = Status::InvalidState;
    guard([&] {
      auto t = nb::cast<std::tuple<nb::bytes, uint32_t, uint32_t>>(
          obj_.attr("infer")(nb::bytes(reinterpret_cast<const char*>(input), input_len), output_len));
      const nb::bytes& out = std::get<0>(t);
      if (out.size() != output_len) throw nb::value_error("infer returned the wrong number of output bytes");
      std::memcpy(output, out.c_str(), output_len);
      result.latency_us = std::get<1>(t);
      result.arena_high_water = std::get<2>(t);
      s = Status::Ok;
    });
    return s;
  }

  // Re-raise the first Python error a callback hit while the core was running.
  void rethrow() {
    if (error_) {
      auto e = std::move(error_);
      error_.reset();
      e->restore();
      throw nb::python_error();
    }
  }

 private:
  template <typename F>
  void guard(F&& f) const {
    if (error_) return;  // the core keeps going on failures; Python sees the first error only
    try {
      f();
    } catch (nb::python_error& e) {
      error_ = std::make_unique<nb::python_error>(std::move(e));
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      error_ = std::make_unique<nb::python_error>();
    }
  }
  // A flash callback returns True/None for success, False for a refused operation.
  template <typename F>
  Status status_of(F&& f) {
    Status s = Status::FlashError;
    guard([&] {
      nb::object r = f();
      if (r.is_none() || nb::cast<bool>(r)) s = Status::Ok;
    });
    return s;
  }

  nb::object obj_;
  mutable std::unique_ptr<nb::python_error> error_;
};

using ActionTuple = std::tuple<std::string, std::string, nb::bytes, int, bool, uint32_t>;

const char* action_name(ActionType t) {
  switch (t) {
    case ActionType::Subscribe: return "subscribe";
    case ActionType::Unsubscribe: return "unsubscribe";
    case ActionType::Publish: return "publish";
    case ActionType::RunHealthCheck: return "run_health_check";
    case ActionType::Reboot: return "reboot";
  }
  return "?";
}

// A Subscribe with Retain Handling 1 (docs/device-protocol.md, "Connection") is a "resubscribe".
ActionTuple to_tuple(const Agent& agent, const Action& a) {
  char topic[kMaxTopicLen];
  agent.topic(a, topic);
  const bool resubscribe = a.type == ActionType::Subscribe && a.retain_handling == 1;
  return {resubscribe ? "resubscribe" : action_name(a.type), topic,
          nb::bytes(reinterpret_cast<const char*>(a.payload), a.len), a.qos, a.retain,
          a.token};
}

// One emulated device: platform + crypto + (optionally) C++ flash + the agent. The agent's actions are
// collected while an event runs and returned from the call as tuples.
class Device final : public ActionSink {
 public:
  Device(const std::string& device_id, const std::string& hardware_class, const std::vector<nb::bytes>& keys,
         nb::object platform, std::optional<std::tuple<uint32_t, uint32_t, uint32_t, uint8_t, uint32_t>> flash_layout,
         uint32_t max_trial_boots, uint32_t telemetry_period_s, uint32_t broker_timeout_ms, uint32_t battery_retry_ms,
         uint16_t checkpoint_every_blocks, uint32_t session_expiry_s)
      : device_id_(device_id), hardware_class_(hardware_class), platform_(std::move(platform)),
        max_trial_boots_(max_trial_boots) {
    if (!valid_device_id(device_id_.c_str())) throw nb::value_error(("invalid device id: " + device_id).c_str());
    if (hardware_class_.empty() || hardware_class_.size() > 32) throw nb::value_error("hardware_class must be 1..32 chars");
    if (keys.empty() || keys.size() > TINYFLEET_MAX_TRUSTED_KEYS) throw nb::value_error("need 1..4 trusted keys (DER)");
    for (const nb::bytes& k : keys) key_der_.emplace_back(k.c_str(), k.c_str() + k.size());
    for (size_t i = 0; i < key_der_.size(); ++i) {
      keys_[i].der = key_der_[i].data();
      keys_[i].der_len = static_cast<uint16_t>(key_der_[i].size());
      compute_key_id(crypto_, keys_[i]);
    }
    if (flash_layout) {
      auto [sector, bank_sectors, align, erased, scratch] = *flash_layout;
      emulator_ = std::make_unique<host::FlashEmulator>(
          host::FlashLayout::dual_bank(sector, bank_sectors, align, erased, scratch));
    }
    cfg_.device_id = device_id_.c_str();
    cfg_.hardware_class = hardware_class_.c_str();
    cfg_.keys = keys_;
    cfg_.key_count = key_der_.size();
    cfg_.telemetry_period_s = telemetry_period_s;
    cfg_.broker_timeout_ms = broker_timeout_ms;
    cfg_.battery_retry_ms = battery_retry_ms;
    if (checkpoint_every_blocks == 0) throw nb::value_error("checkpoint_every_blocks must be >= 1");
    cfg_.checkpoint_every_blocks = checkpoint_every_blocks;
    cfg_.session_expiry_s = session_expiry_s;
  }

  Flash& flash() { return emulator_ ? static_cast<Flash&>(*emulator_) : static_cast<Flash&>(platform_); }

  // Factory provisioning: the bundle into bank 0 through the core's bank writer, confirmed.
  void provision(nb::bytes bundle) {
    const auto* data = reinterpret_cast<const uint8_t*>(bundle.c_str());
    std::vector<uint8_t> prefix(data, data + std::min<size_t>(bundle.size(), TINYFLEET_PREFIX_BUFFER_SIZE));
    auto info = std::make_unique<BundleInfo>();
    Status s = parse_prefix(prefix.data(), prefix.size(), *info);
    if (s == Status::Ok && info->header.total_len != bundle.size()) s = Status::Truncated;
    check(s, "provision: bundle");
    auto writer = std::make_unique<BankWriter>(flash(), crypto_);
    check(writer->begin(0, *info, prefix.data()), "provision: erase/write");
    for (uint8_t c = 0; c < info->component_count; ++c) {
      const ComponentEntry& e = info->components[c];
      check(writer->write(e.offset, data + e.offset, e.length), "provision: write");
    }
    ImageDescriptor desc;
    check(writer->finish(desc), "provision: verify");
    auto boot = std::make_unique<BootSelector>(flash(), crypto_, static_cast<uint8_t>(max_trial_boots_));
    check(boot->provision(0, desc), "provision: metadata");
  }

  // Power on: boot selection, a fresh agent (RAM state gone), its Boot event.
  std::vector<ActionTuple> boot() {
    auto sel = std::make_unique<BootSelector>(flash(), crypto_, static_cast<uint8_t>(max_trial_boots_));
    BootDecision d;
    check(sel->select(d), "boot selection");
    agent_ = std::make_unique<Agent>(cfg_, AgentPorts{flash(), crypto_, platform_, platform_, platform_, *this});
    agent_->attach_sample_ring(samples_.data(), static_cast<uint32_t>(samples_.size()));
    agent_->on_boot(d);
    return drain();
  }

  std::vector<ActionTuple> on_message(const std::string& topic, nb::bytes payload) {
    need();
    agent_->on_message(topic.data(), topic.size(), reinterpret_cast<const uint8_t*>(payload.c_str()), payload.size());
    return drain();
  }
  std::vector<ActionTuple> on_connection_up(bool session_present) {
    need();
    agent_->on_connection_up(session_present);
    return drain();
  }
  std::tuple<bool, uint32_t> connect_options() {
    need();
    const ConnectOptions o = agent_->connect_options();
    return {o.clean_start, o.session_expiry_s};
  }
  std::vector<ActionTuple> on_connection_down() { need(); agent_->on_connection_down(); return drain(); }
  std::vector<ActionTuple> on_publish_acked(uint32_t token) { need(); agent_->on_publish_acked(token); return drain(); }
  std::vector<ActionTuple> on_tick() { need(); agent_->on_tick(); return drain(); }
  std::vector<ActionTuple> on_battery(uint8_t pct) { need(); agent_->on_battery(pct); return drain(); }
  std::vector<ActionTuple> run_health_check() { need(); agent_->run_health_check(); return drain(); }

  void on_samples(nb::bytes raw_le_int16) {
    need();
    const uint16_t ch = agent_->calibration().channel_count;
    if (ch == 0) throw nb::value_error("the running bundle has no calibration channels");
    if (raw_le_int16.size() % (2u * ch) != 0) throw nb::value_error("samples must be whole frames of int16 values");
    std::vector<int16_t> v(raw_le_int16.size() / 2);
    std::memcpy(v.data(), raw_le_int16.c_str(), raw_le_int16.size());  // host is little-endian
    agent_->on_samples(v.data(), static_cast<uint32_t>(v.size() / ch));
  }
  std::tuple<int, bool, int> on_inference(nb::bytes output, uint32_t latency_us) {
    need();
    Decision d = agent_->on_inference(reinterpret_cast<const uint8_t*>(output.c_str()), output.size(), latency_us);
    return {d.winner, d.alarm, d.confidence};
  }
  void on_temperature(double celsius) {
    need();
    if (!(celsius >= -127.99 && celsius <= 127.99)) throw nb::value_error("temperature must be within -127.99..127.99 C");
    agent_->on_temperature(static_cast<int16_t>(celsius * 256.0));  // Q8, truncated toward zero
  }
  nb::bytes latest_frames(uint32_t frames) {
    need();
    const uint16_t ch = agent_->calibration().channel_count;
    std::vector<int16_t> v(static_cast<size_t>(frames) * ch);
    if (ch == 0 || !agent_->latest_frames(v.data(), frames)) throw nb::value_error("not enough frames buffered");
    return nb::bytes(reinterpret_cast<const char*>(v.data()), v.size() * 2);
  }

  // The running bundle's feature extractor over the ring's latest window, read in place: the model's input.
  nb::bytes extract_features() {
    need();
    const FeatureExtractorId fe = agent_->feature_extractor();
    if (fe == FeatureExtractorId::Unknown) {
      throw nb::value_error("the running bundle's feature extractor is not one this firmware has");
    }
    const features::Shape shape = features::shape(fe);
    RingWindow window;
    if (!agent_->latest_window(shape.frames, window)) throw nb::value_error("not enough frames buffered");
    std::vector<int8_t> out(shape.output_bytes());
    check(features::extract(fe, window, out.data(), out.size()), "extract_features");
    return nb::bytes(reinterpret_cast<const char*>(out.data()), out.size());
  }

  ActionTuple will() {
    need();
    uint8_t payload[kPresenceLen];
    Action a;
    agent_->will(payload, a);
    return to_tuple(*agent_, a);
  }

  void perform(const Action& a) override { pending_.push_back(to_tuple(*agent_, a)); }
  std::string state() { need(); return state_name(agent_->state()); }
  nb::bytes running_digest() { need(); return nb::bytes(reinterpret_cast<const char*>(agent_->running_digest()), 32); }
  uint32_t blocks_fetched() { need(); return agent_->blocks_fetched(); }
  uint32_t bad_blocks() { need(); return agent_->bad_blocks(); }
  uint32_t pending_reports() { need(); return agent_->pending_reports(); }
  int last_reason() { need(); return static_cast<int>(agent_->last_reason()); }
  uint16_t channel_count() { need(); return agent_->calibration().channel_count; }
  std::optional<std::string> feature_extractor() {
    need();
    const char* name = feature_extractor_name(agent_->feature_extractor());
    return name != nullptr ? std::optional<std::string>(name) : std::nullopt;
  }

 private:
  void need() {
    if (!agent_) throw nb::value_error("the device has not booted: call boot() first");
  }
  void check(Status s, const char* what) {
    platform_.rethrow();
    if (s != Status::Ok) throw nb::value_error((std::string(what) + " failed: " + status_name(s)).c_str());
  }
  std::vector<ActionTuple> drain() {
    std::vector<ActionTuple> out;
    out.swap(pending_);
    platform_.rethrow();
    return out;
  }

  std::string device_id_;
  std::string hardware_class_;
  PyPlatform platform_;
  uint32_t max_trial_boots_;
  host::MbedtlsCrypto crypto_;
  std::vector<std::vector<uint8_t>> key_der_;
  TrustedKey keys_[TINYFLEET_MAX_TRUSTED_KEYS];
  std::unique_ptr<host::FlashEmulator> emulator_;
  AgentConfig cfg_;
  std::unique_ptr<Agent> agent_;
  std::vector<ActionTuple> pending_;  // the actions of the event running now
  std::array<int16_t, 2048> samples_{};  // the calibrated-sample ring (the simulator's window is 256 x 3)
};

// The NOR model over sparse sectors, for Python (the simulator's flash): statuses as names, reads as bytes.
class PyNorFlash {
 public:
  PyNorFlash(uint32_t sector, uint32_t bank_sectors, uint32_t write_align, uint8_t erased, uint32_t scratch_sectors)
      : flash_(host::FlashLayout::dual_bank(sector, bank_sectors, write_align, erased, scratch_sectors)) {
    if (sector == 0 || write_align == 0 || sector % write_align != 0) {
      throw nb::value_error("the sector size must be a non-zero multiple of the write granularity");
    }
  }
  std::optional<nb::bytes> read(uint8_t area, uint32_t offset, size_t len) {
    std::vector<uint8_t> out(len);
    if (flash_.read(area_of(area), offset, out.data(), len) != Status::Ok) return std::nullopt;
    return nb::bytes(reinterpret_cast<const char*>(out.data()), len);
  }
  std::string write(uint8_t area, uint32_t offset, nb::bytes data) {
    return status_name(
        flash_.write(area_of(area), offset, reinterpret_cast<const uint8_t*>(data.c_str()), data.size()));
  }
  std::string erase(uint8_t area, uint32_t offset, size_t len) {
    return status_name(flash_.erase(area_of(area), offset, len));
  }
  void cut_power_at(uint64_t op_index, uint32_t torn_per_mille) {
    flash_.cut_power_at(op_index, nor::CutMode::Torn, torn_per_mille);
  }
  void disarm() { flash_.disarm(); }
  bool armed() const { return flash_.armed(); }
  void power_on() { flash_.power_on(); }
  uint64_t op_count() const { return flash_.op_count(); }
  size_t bytes_used() const { return flash_.bytes_used(); }

 private:
  static FlashArea area_of(uint8_t area) {
    if (area >= kFlashAreaCount) throw nb::value_error("no such flash area");
    return static_cast<FlashArea>(area);
  }
  host::SparseFlash flash_;
};

// The device's feature extractor named `version` (a manifest's feature_extractor_version) over a ring of
// int16 little-endian frames, `ring` being its whole storage: the window is the extractor's frame count
// starting at slot `first`, wrapping at the end of the storage as the agent's sample ring does.
nb::bytes extract_features(const std::string& version, nb::bytes ring, uint32_t first) {
  const FeatureExtractorId fe = find_feature_extractor(version.c_str());
  if (fe == FeatureExtractorId::Unknown) throw nb::value_error(("unknown feature extractor: " + version).c_str());
  const features::Shape shape = features::shape(fe);
  const size_t frame_bytes = 2u * shape.channels;
  if (ring.size() % frame_bytes != 0 || ring.size() / frame_bytes < shape.frames) {
    throw nb::value_error((version + " takes whole frames of " + std::to_string(shape.channels) +
                           " int16 samples, at least " + std::to_string(shape.frames) + " of them").c_str());
  }
  const uint32_t capacity = static_cast<uint32_t>(ring.size() / frame_bytes);
  if (first >= capacity) throw nb::value_error("first must be a frame slot of the ring");
  std::vector<int16_t> storage(ring.size() / 2);
  std::memcpy(storage.data(), ring.c_str(), ring.size());  // host is little-endian
  const RingWindow window{storage.data(), capacity, first, shape.frames, shape.channels};
  std::vector<int8_t> out(shape.output_bytes());
  if (features::extract(fe, window, out.data(), out.size()) != Status::Ok) throw nb::value_error("extract failed");
  return nb::bytes(reinterpret_cast<const char*>(out.data()), out.size());
}

// The device's StreamVerifier over a whole bundle fed in `chunk`-byte pieces: the status name of its verdict
// ("Ok" or an error of docs/bundle-format.md), so tests hold the C++ and Python verifiers to the same bytes.
std::string verify_bundle(nb::bytes data, const std::vector<nb::bytes>& trusted_keys, const std::string& hardware_class,
                          const std::string& device_id, uint32_t min_counter, uint64_t now, size_t chunk) {
  if (chunk == 0) throw nb::value_error("chunk must be >= 1");
  host::MbedtlsCrypto crypto;
  std::vector<TrustedKey> keys(trusted_keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i].der = reinterpret_cast<const uint8_t*>(trusted_keys[i].c_str());
    keys[i].der_len = static_cast<uint16_t>(trusted_keys[i].size());
    compute_key_id(crypto, keys[i]);
  }
  VerifyPolicy policy;
  policy.hardware_class = hardware_class.c_str();
  policy.device_id = device_id.c_str();
  policy.min_counter = min_counter;
  policy.now = now;
  policy.keys = keys.data();
  policy.key_count = keys.size();
  auto verifier = std::make_unique<StreamVerifier>(crypto, policy);  // its prefix buffer is too big for a stack
  verifier->reset();
  const auto* p = reinterpret_cast<const uint8_t*>(data.c_str());
  Status s = Status::NeedMoreBytes;
  for (size_t at = 0; at < data.size() && s == Status::NeedMoreBytes; at += chunk) {
    s = verifier->feed(p + at, data.size() - at < chunk ? data.size() - at : chunk);
  }
  if (s == Status::NeedMoreBytes) s = verifier->finish();
  return status_name(s);
}

}  // namespace

NB_MODULE(_agent, m) {
  m.doc() = "The tinyfleet device agent core (C++), driven by a platform implemented in Python.";
  m.attr("BLOCK_SIZE") = kBlockSize;
  m.def("verify_bundle", &verify_bundle, nb::arg("data"), nb::arg("trusted_keys"), nb::arg("hardware_class"),
        nb::arg("device_id"), nb::arg("min_counter"), nb::arg("now"), nb::arg("chunk") = 4096,
        "The device's StreamVerifier verdict on a whole bundle: 'Ok' or the error's name.");
  nb::class_<Device>(m, "Device",
                     "One emulated device. Every on_*() returns the agent's actions as tuples "
                     "(kind, topic, payload, qos, retain, token), to perform in order; kind \"resubscribe\" is a "
                     "subscribe with Retain Handling 1.")
      .def(nb::init<const std::string&, const std::string&, const std::vector<nb::bytes>&, nb::object,
                    std::optional<std::tuple<uint32_t, uint32_t, uint32_t, uint8_t, uint32_t>>, uint32_t, uint32_t,
                    uint32_t, uint32_t, uint16_t, uint32_t>(),
           nb::arg("device_id"), nb::arg("hardware_class"), nb::arg("trusted_keys"), nb::arg("platform"),
           nb::arg("flash_layout") = nb::none(), nb::arg("max_trial_boots") = TINYFLEET_MAX_TRIAL_BOOTS,
           nb::arg("telemetry_period_s") = 60, nb::arg("broker_timeout_ms") = 30000,
           nb::arg("battery_retry_ms") = 60000, nb::arg("checkpoint_every_blocks") = 1,
           nb::arg("session_expiry_s") = 86400)
      .def("provision", &Device::provision, nb::arg("bundle"))
      .def("boot", &Device::boot)
      .def("on_message", &Device::on_message, nb::arg("topic"), nb::arg("payload"))
      .def("on_connection_up", &Device::on_connection_up, nb::arg("session_present") = false)
      .def("connect_options", &Device::connect_options,
           "(clean_start, session_expiry_s) for the next CONNECT: Clean Start until this boot's first connection.")
      .def("on_connection_down", &Device::on_connection_down)
      .def("on_publish_acked", &Device::on_publish_acked, nb::arg("token"))
      .def("on_tick", &Device::on_tick)
      .def("on_battery", &Device::on_battery, nb::arg("pct"))
      .def("run_health_check", &Device::run_health_check)
      .def("on_samples", &Device::on_samples, nb::arg("raw_le_int16"))
      .def("on_inference", &Device::on_inference, nb::arg("output"), nb::arg("latency_us"))
      .def("on_temperature", &Device::on_temperature, nb::arg("celsius"))
      .def("latest_frames", &Device::latest_frames, nb::arg("frames"))
      .def("extract_features", &Device::extract_features,
           "The running bundle's feature extractor over the latest window of the sample ring (the model's "
           "input bytes); ValueError if the firmware has no such extractor or too few frames are buffered.")
      .def("will", &Device::will)
      .def_prop_ro("state", &Device::state)
      .def_prop_ro("running_digest", &Device::running_digest)
      .def_prop_ro("blocks_fetched", &Device::blocks_fetched)
      .def_prop_ro("bad_blocks", &Device::bad_blocks)
      .def_prop_ro("pending_reports", &Device::pending_reports)
      .def_prop_ro("last_reason", &Device::last_reason)
      .def_prop_ro("channel_count", &Device::channel_count)
      .def_prop_ro("feature_extractor", &Device::feature_extractor,
                   "The running bundle's feature extractor, None if this firmware has none of its name.");
  m.def("extract_features", &extract_features, nb::arg("version"), nb::arg("ring"), nb::arg("first") = 0,
        "The device's feature extractor `version` over int16 little-endian frames (the ring's storage), the "
        "window starting at frame slot `first` and wrapping: the model's input bytes.");
  nb::class_<PyNorFlash>(m, "NorFlash",
                         "The NOR model over sparse sectors (two banks, two metadata sectors, a scratch area). "
                         "write/erase return the core's status name ('Ok', 'FlashNotErased', 'PowerLost', ...).")
      .def(nb::init<uint32_t, uint32_t, uint32_t, uint8_t, uint32_t>(), nb::arg("sector"), nb::arg("bank_sectors"),
           nb::arg("write_align"), nb::arg("erased"), nb::arg("scratch_sectors"))
      .def("read", &PyNorFlash::read, nb::arg("area"), nb::arg("offset"), nb::arg("length"),
           "The bytes, or None if the range is out of bounds or the power is off.")
      .def("write", &PyNorFlash::write, nb::arg("area"), nb::arg("offset"), nb::arg("data"))
      .def("erase", &PyNorFlash::erase, nb::arg("area"), nb::arg("offset"), nb::arg("length"))
      .def_prop_ro("op_count", &PyNorFlash::op_count)
      .def_prop_ro("bytes_used", &PyNorFlash::bytes_used)
      .def("cut_power_at", &PyNorFlash::cut_power_at, nb::arg("op_index"), nb::arg("torn_per_mille"),
           "Tear the op_index-th write or erase from now (0 = the next one), landing torn_per_mille of it.")
      .def_prop_ro("armed", &PyNorFlash::armed)
      .def("disarm", &PyNorFlash::disarm)
      .def("power_on", &PyNorFlash::power_on, "After a cut: the flash keeps what landed and works again.")
      .def_static(
          "pooled", [] { return std::make_tuple(host::SectorPool::instance().sectors(), host::SectorPool::instance().bytes()); },
          "(sectors, bytes) of the distinct sector contents every NorFlash of this process holds between them.");
}
