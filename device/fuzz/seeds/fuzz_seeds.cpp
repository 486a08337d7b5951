// The fuzz targets' generated seeds (device/fuzz/corpus/<target>/seed-*), made from real valid inputs: the
// agent's event scripts over the fixture bundles, progress records the agent wrote during those scripts, the
// calibration, thresholds and health vectors of the tests/vectors bundles (made by the Python bundle builder)
// and of the fixture bundles, and metadata over banks that hold real, correctly hashed images.
//   fuzz_seeds write <corpus-dir> <vectors-dir>   rewrites the seed-* files
//   fuzz_seeds check <corpus-dir> <vectors-dir>   fails if a committed seed-* file differs from (or is not) what
//                                                 write would make, or a seed no longer reaches its goal
// Every seed's goal is checked in both modes: an agent script ends where it should, a metadata seed boots
// the bank it names, a decoder seed decodes, a health seed passes or fails as intended.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent_harness.h"
#include "support/agent_driver.h"
#include "support/component_payloads.h"
#include "support/files.h"
#include "support/health_input.h"
#include "support/metadata_input.h"
#include "support/progress_input.h"
#include "tinyfleet/bytes.h"
#include "update_driver.h"

namespace {

using namespace tinyfleet;
using Bytes = std::vector<uint8_t>;
using fuzzagent::Script;
using fuzzagent::Summary;

struct Seed {
  std::string target;  // corpus directory
  std::string name;    // file name (seed-...)
  Bytes bytes;
};

std::vector<Seed> g_seeds;
std::vector<std::string> g_failures;

void goal(bool reached, const std::string& seed, const std::string& what) {
  if (!reached) g_failures.push_back(seed + ": " + what);
}

void add(const std::string& target, const std::string& name, const Bytes& bytes) {
  g_seeds.push_back({target, "seed-" + name, bytes});
}

// --- fuzz_agent: event scripts, and the progress records they leave -----------------------------------------

Bytes progress_copies(const Summary& s) {
  Bytes out(s.scratch.begin(), s.scratch.begin() + kProgressRecordLen);
  out.insert(out.end(), s.scratch.begin() + fuzzagent::kScratchCopySpan,
             s.scratch.begin() + fuzzagent::kScratchCopySpan + kProgressRecordLen);
  return out;
}

void agent_seed(const std::string& name, const Script& script, const std::function<bool(const Summary&)>& reached,
                const char* what) {
  const Summary s = fuzzagent::run(script.bytes.data(), script.bytes.size());
  std::string seen = std::string(what) + " (ended running fixture " + std::to_string(s.running_fixture) +
                     ", boot state " + std::to_string(static_cast<int>(s.boot_state)) + ", agent state " +
                     std::to_string(static_cast<int>(s.state)) + ", " + std::to_string(s.boots) + " boots, " +
                     std::to_string(s.blocks_fetched) + " blocks, reasons";
  for (uint16_t r : s.reasons) seen += " " + std::to_string(r);
  goal(reached(s), "agent/" + name, (seen + ")").c_str());
  add("agent", name, script.bytes);
  add("progress", "after-" + name, progress_copies(s));
}

// An update to `fixture` that stages, reboots into its trial and runs the health check while connected.
Script update_to(uint8_t fixture, uint8_t seq) {
  Script s;
  s.connection().desired(fixture, seq).drain();  // desired, meta, blocks; staged: reboot into the trial
  s.connection().drain().health_check().drain().ack().ack().ack();
  return s;
}

bool runs(const Summary& s, int fixture, BootState state) {
  return s.running_fixture == fixture && s.boot_state == state;
}

void agent_seeds() {
  using R = Reason;
  agent_seed("update", update_to(1, 1),
             [](const Summary& s) {
               return runs(s, 1, BootState::Confirmed) && s.security_counter == 2 && s.has_reason(R::Confirmed) &&
                      s.blocks_fetched == 4;
             },
             "installs fixture 1 (3 firmware blocks and 1 of health vectors fetched, the rest copied), confirms "
             "it and raises the counter");
  {
    Script s;
    s.connection().desired(1, 1).pump(2);  // desired, meta: the latest subscription is the health vectors' block
    s.message(fuzzagent::FramedBlock, 0, {}, Bytes(200, 0xA5)).drain();
    agent_seed("hash-retry", s,
               [](const Summary& s) { return runs(s, 1, BootState::Trial) && s.blocks_fetched > 4; },
               "a well-formed block with the wrong bytes fails its component's hash: fetched again, it stages");
  }
  agent_seed("failed-health", update_to(2, 1),
             [](const Summary& s) { return runs(s, 0, BootState::Reverted) && s.has_reason(R::HealthOutputMismatch); },
             "fixture 2 fails its health vectors and reverts to fixture 0");
  agent_seed("policy-refused", Script().connection().desired(3, 1).drain(),
             [](const Summary& s) { return runs(s, 0, BootState::Confirmed) && s.boots == 1 && s.reasons.size() >= 2; },
             "fixture 3 (another hardware class) is refused at its meta");
  {
    Script s;
    s.connection().desired(1, 1).drain().tick(60);
    agent_seed("broker-timeout", s.connection(),
               [](const Summary& s) { return runs(s, 0, BootState::Reverted) && s.has_reason(R::HealthBrokerTimeout); },
               "a trial that never reaches the broker reverts after the timeout");
  }
  {
    Script s;
    s.connection().desired(1, 1).pump(4).reboot().connection().drain();
    agent_seed("resume", s,
               [](const Summary& s) { return runs(s, 1, BootState::Trial) && s.has_reason(R::Resumed); },
               "a download cut by a reboot resumes and stages");
  }
  {
    Script s;
    s.connection().desired(1, 1).pump(3).session().session().drain();
    agent_seed("session-resume", s,
               [](const Summary& s) { return runs(s, 1, BootState::Trial) && s.blocks_fetched == 4; },
               "a download whose connection drops resumes from the broker's session and stages, each block once");
  }
  {
    Script s;
    s.connection().session().desired(1, 1).session().drain();
    agent_seed("desired-while-away", s, [](const Summary& s) { return runs(s, 1, BootState::Trial); },
               "a desired state published while the device is away reaches it from its session");
  }
  {
    Script s;
    s.battery(10).connection().desired(1, 1).drain().tick(130).battery(90).drain();
    agent_seed("battery-low", s,
               [](const Summary& s) { return runs(s, 1, BootState::Trial) && s.has_reason(R::BatteryLow); },
               "an update deferred for the battery starts when it recovers");
  }
  {
    Script s;
    s.connection().desired_for(fuzzagent::fixture_meta(1), 1).drain();
    agent_seed("desired-for-meta", s, [](const Summary& s) { return runs(s, 1, BootState::Trial); },
               "a desired state made for fixture 1's meta bytes stages it");
  }
  {
    Script s = update_to(1, 5);
    s.desired(0, 3).drain().desired(0, 6, kDesiredRollback).drain();
    agent_seed("stale-then-rollback", s,
               [](const Summary& s) {
                 return runs(s, 1, BootState::Confirmed) && s.has_reason(R::StaleDesired) &&
                        s.has_reason(reason_from_status(Status::CounterTooLow));
               },
               "a stale desired state is refused, and so is a rollback below the stored counter");
  }
  {
    Script s = update_to(2, 1);
    s.connection().drain().desired(2, 2).drain();
    agent_seed("restage-in-place", s,
               [](const Summary& s) {
                 return runs(s, 2, BootState::Trial) && s.has_reason(R::PreviouslyFailed) && s.has_reason(R::Staged);
               },
               "a failed update is not retried, but a new desired state for it is staged from the bank in place");
  }
  {
    using fuzzagent::TopicSel;
    Bytes desired(kDesiredLen, 0x5A);
    Script s;
    s.connection();
    s.message(TopicSel::OwnDesired, 0, {}, desired);
    s.message(TopicSel::OtherTopic, 4, {}, desired);
    s.message(TopicSel::FixtureMeta, 1, {}, fuzzagent::fixture_meta(1));
    s.message(TopicSel::FixtureBlock, 5, {0}, Bytes(64, 1));
    const std::string topic = "fleet/devices/dev-0001/desired/extra";
    Bytes operands = {static_cast<uint8_t>(topic.size())};
    operands.insert(operands.end(), topic.begin(), topic.end());
    s.message(TopicSel::RawTopic, 0, operands, desired);
    s.message(TopicSel::OtherTopic, 1, {}, Bytes(kReportLen, 0));
    s.desired(1, 1).pump(2);  // desired and meta: the block subscriptions are the latest
    s.message(TopicSel::Subscribed, 0, {}, Bytes(100, 0xEE));  // a malformed block on a wanted topic
    s.message(TopicSel::PayloadMeta, 0, {}, fuzzagent::fixture_meta(1)).drain();
    agent_seed("raw-messages", s,
               [](const Summary& s) { return runs(s, 1, BootState::Trial) && s.has_reason(R::BadDesired); },
               "malformed and foreign messages are dropped, the update still stages");
  }
  {
    Script s;
    s.connection();
    for (uint8_t i = 0; i < 6; ++i) {
      s.op(fuzzagent::Samples).u8(8);
      for (int k = 0; k < 16; ++k) s.u16(static_cast<uint16_t>(i * 4099 + k * 613));
      s.u8(static_cast<uint8_t>(i * 40)).u8(200).u8(3).u8(90).u16(1500);
    }
    s.tick(120);
    agent_seed("samples", s, [](const Summary& s) { return runs(s, 0, BootState::Confirmed); },
               "samples and inferences on fixture 0's calibration and thresholds, then telemetry");
  }
}

// --- fuzz_components, fuzz_health: components of real bundles -----------------------------------------------

Bytes component(const Bytes& bundle, ComponentType type) {
  BundleInfo info;
  if (parse_prefix(bundle.data(), bundle.size(), info) != Status::Ok || info.find(type) < 0) return {};
  const ComponentEntry& e = info.components[info.find(type)];
  return Bytes(bundle.begin() + e.offset, bundle.begin() + e.offset + e.length);
}

Bytes health_seed(uint8_t mode, uint32_t max_latency_ms, uint32_t peak_ram, uint32_t latency_us, uint32_t arena,
                  const Bytes& vectors) {
  Bytes head(fuzzsupport::kHealthHeadLen, 0);
  head[0] = mode;
  store_u32le(head.data() + 1, max_latency_ms);
  store_u32le(head.data() + 5, peak_ram);
  store_u32le(head.data() + 17, latency_us);
  store_u32le(head.data() + 21, arena);
  head.insert(head.end(), vectors.begin(), vectors.end());
  return head;
}

HealthOutcome replay(const Bytes& seed) {
  host::FlashEmulator flash(fuzzsupport::health_layout());
  const fuzzsupport::HealthInput in = fuzzsupport::load_health_input(seed.data(), seed.size(), flash);
  agenttest::FakeInference model;
  model.latency_us = in.latency_us;
  model.arena = in.arena_bytes;
  static uint8_t scratch[kHealthScratchLen];
  return run_health_vectors(flash, FlashArea::Bank0, in.contract, model, scratch);
}

void component_seeds(const std::string& vectors_dir) {
  struct Source {
    std::string name;
    Bytes bundle;
  };
  const std::vector<Source> sources = {
      {"vectors-stm32l4", tftest::read_file(vectors_dir + "/valid-stm32l4.tfb")},
      {"vectors-firmware-offset", tftest::read_file(vectors_dir + "/valid-firmware-offset.tfb")},
      {"fixture-0", fuzzagent::fixture_bundle(0)},
      {"fixture-2", fuzzagent::fixture_bundle(2)},
  };
  for (const Source& src : sources) {
    const Bytes cal = component(src.bundle, ComponentType::Calibration);
    const Bytes thr = component(src.bundle, ComponentType::Thresholds);
    Calibration c;
    Thresholds t;
    goal(parse_calibration(cal.data(), cal.size(), c) == Status::Ok, "components/" + src.name, "calibration parses");
    goal(parse_thresholds(thr.data(), thr.size(), t) == Status::Ok, "components/" + src.name, "thresholds parse");
    add("components", "calibration-" + src.name, cal);
    add("components", "thresholds-" + src.name, thr);
    const Bytes hv = component(src.bundle, ComponentType::HealthVectors);
    add("health", "mismatch-or-pass-" + src.name, health_seed(0, 50, 20000, 1200, 12000, hv));
  }
  // The model agrees with fixture 0's vectors: pass; then each limit exceeded; then 2 vectors at an offset.
  const Bytes hv0 = component(fuzzagent::fixture_bundle(0), ComponentType::HealthVectors);
  const struct {
    std::string name;
    Bytes seed;
    Reason want;
  } health[] = {
      {"pass", health_seed(0, 50, 20000, 1200, 12000, hv0), Reason::None},
      {"latency", health_seed(0, 1, 20000, 1200, 12000, hv0), Reason::HealthLatency},
      {"ram", health_seed(0, 50, 11999, 1200, 12000, hv0), Reason::HealthRam},
      {"mismatch", health_seed(0, 50, 20000, 1200, 12000, component(fuzzagent::fixture_bundle(2),
                                                                     ComponentType::HealthVectors)),
       Reason::HealthOutputMismatch},
      {"pass-at-offset", health_seed(0x30, 50, 20000, 1200, 12000, hv0), Reason::None},
      {"short-length", health_seed(1, 50, 20000, 1200, 12000, hv0), Reason::HealthInference},
      {"unknown-extractor", health_seed(8, 50, 20000, 1200, 12000, hv0), Reason::HealthFeatureExtractor},
  };
  for (const auto& h : health) {
    goal(replay(h.seed).reason == h.want, "health/" + h.name, "the replay ends as intended");
    add("health", h.name, h.seed);
  }
}

// --- fuzz_metadata: metadata over banks holding real images ---------------------------------------------------

Bytes tiny_bundle(uint32_t seed, uint32_t counter, tftest::TestSigner& signer) {
  tftest::BundleSpec s;
  s.bundle_id = "tiny-" + std::to_string(seed);
  s.security_counter = counter;
  s.payloads[0] = tftest::pattern(200 + seed, seed * 3 + 1);
  s.payloads[1] = tftest::pattern(160, seed * 3 + 2);
  s.payloads[2] = tftest::thresholds_payload({{0, true}});
  s.payloads[3] = tftest::calibration_payload({{0, 1 << 16, 0, 256}}, 100);
  s.payloads[4] = agenttest::health_vectors(seed, 1);
  return tftest::build_bundle(s, &signer);
}

Bytes metadata_input(host::FlashEmulator& flash) {
  Bytes out;
  for (FlashArea a : {FlashArea::Meta0, FlashArea::Meta1}) {
    const Bytes& m = flash.raw(a);
    out.insert(out.end(), m.begin(), m.begin() + kMetadataRecordLen);
  }
  for (FlashArea a : {FlashArea::Bank0, FlashArea::Bank1}) {
    out.insert(out.end(), flash.raw(a).begin(), flash.raw(a).end());
  }
  return out;
}

void metadata_seed(const std::string& name, host::FlashEmulator& flash, uint8_t bank, bool trial) {
  const Bytes seed = metadata_input(flash);
  host::FlashEmulator again(fuzzsupport::metadata_layout());
  fuzzsupport::load_metadata_input(seed.data(), seed.size(), again);
  host::MbedtlsCrypto crypto;
  BootSelector sel(again, crypto, 3);
  BootDecision d;
  goal(sel.select(d) == Status::Ok && d.bank == bank && d.trial == trial, "metadata/" + name,
       "boot selection verifies the bank the metadata names and boots it");
  add("metadata", name, seed);
}

void metadata_seeds() {
  tftest::TestSigner signer("fuzz-metadata");
  host::MbedtlsCrypto crypto;
  host::FlashEmulator flash(fuzzsupport::metadata_layout());
  BootSelector sel(flash, crypto, 3);
  const Bytes b0 = tiny_bundle(1, 1, signer), b1 = tiny_bundle(2, 2, signer);
  tftest::Image i0, i1;
  bool ok = tftest::make_image(b0.data(), static_cast<uint32_t>(b0.size()), crypto, i0) == Status::Ok &&
            tftest::make_image(b1.data(), static_cast<uint32_t>(b1.size()), crypto, i1) == Status::Ok &&
            tftest::write_image(flash, crypto, 0, i0, 256) == Status::Ok && sel.provision(0, i0.desc) == Status::Ok;
  goal(ok, "metadata", "a tiny bundle fits and provisions bank 0");
  metadata_seed("confirmed-valid-bank", flash, 0, false);
  ok = tftest::write_image(flash, crypto, 1, i1, 256) == Status::Ok && sel.install_trial(1, i1.desc) == Status::Ok;
  goal(ok, "metadata", "a second tiny bundle installs as a trial in bank 1");
  metadata_seed("trial-valid-banks", flash, 1, true);
  BootDecision d;
  ok = sel.select(d) == Status::Ok && sel.select(d) == Status::Ok;
  goal(ok, "metadata", "two trial boots");
  metadata_seed("trial-last-attempt", flash, 1, true);
  ok = sel.confirm() == Status::Ok;
  goal(ok, "metadata", "the trial confirms");
  metadata_seed("confirmed-after-update", flash, 1, false);
  ok = sel.install_trial(0, i0.desc) == Status::Ok && sel.revert() == Status::Ok;
  goal(ok, "metadata", "a trial of bank 0 reverts");
  metadata_seed("reverted-valid-banks", flash, 1, false);
}

// --- write / check ------------------------------------------------------------------------------------------

namespace fs = std::filesystem;

// The corpus directories the generator owns the seed-* files of.
std::set<std::string> seed_dirs() {
  std::set<std::string> dirs;
  for (const Seed& s : g_seeds) dirs.insert(s.target);
  return dirs;
}

int write_seeds(const fs::path& corpus) {
  for (const std::string& dir : seed_dirs()) {
    fs::create_directories(corpus / dir);
    for (const auto& e : fs::directory_iterator(corpus / dir)) {
      if (e.path().filename().string().rfind("seed-", 0) == 0) fs::remove(e.path());
    }
  }
  for (const Seed& s : g_seeds) {
    std::FILE* f = std::fopen((corpus / s.target / s.name).c_str(), "wb");
    if (f == nullptr || std::fwrite(s.bytes.data(), 1, s.bytes.size(), f) != s.bytes.size() || std::fclose(f) != 0) {
      std::fprintf(stderr, "cannot write %s\n", (corpus / s.target / s.name).c_str());
      return 1;
    }
  }
  std::printf("wrote %zu seeds under %s\n", g_seeds.size(), corpus.c_str());
  return 0;
}

int check_seeds(const fs::path& corpus) {
  std::map<std::string, const Seed*> want;
  for (const Seed& s : g_seeds) want[s.target + "/" + s.name] = &s;
  for (const auto& [key, seed] : want) {
    const fs::path p = corpus / key;
    if (!fs::exists(p)) {
      g_failures.push_back(key + ": missing (run fuzz_seeds write)");
    } else if (tftest::read_file(p.string()) != seed->bytes) {
      g_failures.push_back(key + ": stale, differs from what fuzz_seeds write makes");
    }
  }
  for (const std::string& dir : seed_dirs()) {
    if (!fs::exists(corpus / dir)) continue;
    for (const auto& e : fs::directory_iterator(corpus / dir)) {
      const std::string key = dir + "/" + e.path().filename().string();
      if (e.path().filename().string().rfind("seed-", 0) == 0 && want.count(key) == 0) {
        g_failures.push_back(key + ": not a generated seed (run fuzz_seeds write)");
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 4 ? argv[1] : "";
  if (mode != "write" && mode != "check") {
    std::fprintf(stderr, "usage: fuzz_seeds write|check <corpus-dir> <vectors-dir>\n");
    return 2;
  }
  agent_seeds();
  component_seeds(argv[3]);
  metadata_seeds();
  if (mode == "write" && g_failures.empty()) write_seeds(argv[2]);
  if (mode == "check") check_seeds(argv[2]);
  for (const std::string& f : g_failures) std::fprintf(stderr, "FAIL %s\n", f.c_str());
  if (!g_failures.empty()) return 1;
  std::printf("%zu seeds %s\n", g_seeds.size(), mode == "check" ? "are current and reach their goals" : "written");
  return 0;
}
