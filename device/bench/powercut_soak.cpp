// Power-cut soak: random device lives through the whole agent (the test harness's device and broker), each
// a random sequence of updates on one of the 24 flash configurations, under random power cuts at random
// flash operations (before, after, or torn at a random length) and random link drops. An update is an
// install that confirms, an install whose health check fails (reverted), or one resumed after a cut or a
// drop. Every boot must find a verified image (old or new, never neither); every update must end where it
// would without faults (the new image confirmed, or, for the unhealthy bundle, the previous image running
// and the bundle refused), unless cuts kept a healthy trial from confirming for all its boots: then it must
// be reverted, as designed (counted as exhausted). A life that breaks either is unrecoverable: counted, and
// its number printed.
//
// Life i draws everything from seed (seed, i): `powercut_soak <seed> 0 <first life> 1` replays it.
// Usage: powercut_soak <seed> <seconds> [first life] [max lives]   (seconds 0: no time limit)
// Prints one JSON line of counts. Driven by bench/bench_soak.py.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "agent_harness.h"
#include "support/flash_configs.h"

using namespace tinyfleet;
using agenttest::Broker;
using agenttest::Bytes;
using agenttest::Device;
using agenttest::Published;

namespace {

// The bundles a life moves between: A (provisioned), B and C (healthy; C shares B's firmware, so going
// from B to C copies it) and U (its health vectors disagree with the model: every trial of it reverts).
struct Pool {
  Bytes a, b, c, u;
};

tftest::BundleSpec small(uint32_t seed, uint32_t counter) {
  tftest::BundleSpec s = agenttest::spec(seed, counter);
  s.payloads[0] = tftest::pattern(4500 + seed, seed * 7 + 1);  // 2 blocks
  s.payloads[1] = tftest::pattern(1500, seed * 7 + 2);
  return s;
}

const Pool& pool() {
  static const Pool p = [] {
    Device signer_only;
    Pool out;
    const tftest::BundleSpec a = small(1, 1);
    tftest::BundleSpec b = small(2, 2), c = small(3, 2), u = small(4, 2);
    b.payloads[2] = a.payloads[2];  // thresholds and calibration copied from A's bank
    b.payloads[3] = a.payloads[3];
    c.payloads[0] = b.payloads[0];
    u.payloads[4].back() ^= 0x01;  // the last health vector's expected output is wrong
    out.a = signer_only.make_bundle(a);
    out.b = signer_only.make_bundle(b);
    out.c = signer_only.make_bundle(c);
    out.u = signer_only.make_bundle(u);
    return out;
  }();
  return p;
}

struct Counts {
  uint64_t lives = 0, boots = 0, cuts_armed = 0, cuts_fired = 0, torn_fired = 0, updates = 0, confirmed = 0,
           reverted = 0, exhausted = 0, resumed = 0, link_drops = 0, unrecoverable = 0;
  std::vector<uint64_t> unrecoverable_lives;
};

bool is(const Device& d, const uint8_t* digest) {
  return d.agent != nullptr && std::memcmp(d.agent->running_digest(), digest, 32) == 0;
}

// One life; false if it was unrecoverable (why: in `why`).
bool life(uint64_t seed, uint64_t index, Counts& n, std::string& why) {
  std::mt19937_64 rng(seed * 1000003u + index);
  auto pick = [&rng](uint64_t k) { return rng() % k; };
  const auto configs = tftest::all_flash_configs();
  const tftest::FlashConfig cfg = configs[pick(configs.size())];
  Broker broker;
  Device dev(tftest::agent_layout(cfg));
  dev.broker = &broker;
  dev.cfg.checkpoint_every_blocks = static_cast<uint16_t>(1 + pick(3));
  dev.provision(pool().a);
  const Published pa = Broker().publish_bundle(pool().a, dev.crypto);
  const Published pb = broker.publish_bundle(pool().b, dev.crypto);
  const Published pc = broker.publish_bundle(pool().c, dev.crypto);
  const Published pu = broker.publish_bundle(pool().u, dev.crypto);
  const Published* images[] = {&pa, &pb, &pc, &pu};
  const Published* running = &pa;
  uint32_t seq = 0;
  // At most one cut is armed at a time: when the flash's count of fired cuts moves, the last armed one fired.
  host::CutMode last_mode = host::CutMode::Before;
  uint32_t fired_seen = 0;
  auto observe = [&]() {
    if (dev.flash.cuts_fired() == fired_seen) return;
    fired_seen = dev.flash.cuts_fired();
    ++n.cuts_fired;
    n.torn_fired += last_mode == host::CutMode::Torn ? 1 : 0;
  };
  auto arm = [&]() {
    last_mode = static_cast<host::CutMode>(pick(3));
    dev.flash.cut_power_at(pick(60), last_mode, static_cast<uint32_t>(pick(1001)));
    ++n.cuts_armed;
  };
  auto boot = [&]() -> bool {
    try {
      dev.boot();  // a cut during boot selection: it powers on and selects again
    } catch (const std::exception&) {
      why = "no image verifies at a boot";
      return false;
    }
    observe();
    ++n.boots;
    for (const Published* p : images)
      if (is(dev, p->digest)) return true;
    why = "a boot runs none of the bundles";
    return false;
  };
  if (!boot()) return false;
  const int updates = 2 + static_cast<int>(pick(3));
  for (int u = 0; u < updates; ++u) {
    const Published* target = images[1 + pick(3)];
    if (target == running) continue;
    broker.publish_desired("dev-0001", ++seq, *target);
    ++n.updates;
    const bool healthy = target != &pu;
    const size_t resumed_before = broker.reports_with(Reason::Resumed).size();
    const size_t exhausted_before = broker.reports_with(Reason::TrialExhausted).size();
    int cuts_left = static_cast<int>(pick(4));  // 0 to 3 cuts in this update
    if (cuts_left-- > 0) arm();
    bool settled = false;
    for (int round = 0; round < 40 && !settled; ++round) {
      if (!dev.flash.powered() || dev.reboot_requested) {
        if (!dev.flash.powered() && !dev.flash.armed() && cuts_left-- > 0) arm();  // a cut during recovery
        if (!boot()) return false;
      }
      if (pick(6) == 0) {
        dev.deliver_budget = static_cast<long>(1 + pick(8));  // the link drops after a few messages
        ++n.link_drops;
      }
      dev.connect();
      observe();
      dev.deliver_budget = -1;
      const bool quiet = dev.flash.powered() && !dev.reboot_requested;
      if (quiet && dev.state() == AgentState::Idle && is(dev, target->digest)) settled = true;
      if (quiet && dev.state() == AgentState::Failed && dev.agent->last_reason() == Reason::PreviouslyFailed &&
          is(dev, running->digest))
        settled = true;
      if (!settled && quiet && dev.connected) dev.disconnect();
    }
    if (!settled) {
      why = "an update did not settle";
      return false;
    }
    // Cuts that keep a healthy trial from confirming use up its boots: then it is reverted, as designed.
    const bool exhausted = broker.reports_with(Reason::TrialExhausted).size() > exhausted_before;
    if (is(dev, target->digest) != (healthy && !exhausted)) {
      why = healthy ? "a healthy update did not end on its image" : "an unhealthy update was not reverted";
      return false;
    }
    dev.flash.disarm();
    (is(dev, target->digest) ? n.confirmed : n.reverted) += 1;
    n.exhausted += exhausted ? 1 : 0;
    n.resumed += broker.reports_with(Reason::Resumed).size() > resumed_before ? 1 : 0;
    if (is(dev, target->digest)) running = target;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: powercut_soak <seed> <seconds> [first life] [max lives]\n");
    return 2;
  }
  const uint64_t seed = std::strtoull(argv[1], nullptr, 10);
  const double seconds = std::strtod(argv[2], nullptr);
  const uint64_t first = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 0;
  const uint64_t max_lives = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : UINT64_MAX;
  Counts n;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&t0]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  for (uint64_t i = first; n.lives < max_lives && (seconds <= 0 || n.lives == 0 || elapsed() < seconds); ++i) {
    std::string why;
    ++n.lives;
    if (!life(seed, i, n, why)) {
      ++n.unrecoverable;
      if (n.unrecoverable_lives.size() < 20) n.unrecoverable_lives.push_back(i);
      std::fprintf(stderr, "life %llu unrecoverable: %s\n", static_cast<unsigned long long>(i), why.c_str());
    }
  }
  std::printf("{\"seed\": %llu, \"first_life\": %llu, \"seconds\": %.1f, \"lives\": %llu, \"boots\": %llu, "
              "\"cuts_armed\": %llu, \"cuts_fired\": %llu, \"torn_fired\": %llu, \"updates\": %llu, "
              "\"confirmed\": %llu, \"reverted\": %llu, \"exhausted\": %llu, "
              "\"resumed\": %llu, \"link_drops\": %llu, \"unrecoverable\": %llu, \"unrecoverable_lives\": [",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(first), elapsed(),
              static_cast<unsigned long long>(n.lives), static_cast<unsigned long long>(n.boots),
              static_cast<unsigned long long>(n.cuts_armed), static_cast<unsigned long long>(n.cuts_fired),
              static_cast<unsigned long long>(n.torn_fired), static_cast<unsigned long long>(n.updates),
              static_cast<unsigned long long>(n.confirmed),
              static_cast<unsigned long long>(n.reverted), static_cast<unsigned long long>(n.exhausted),
              static_cast<unsigned long long>(n.resumed),
              static_cast<unsigned long long>(n.link_drops), static_cast<unsigned long long>(n.unrecoverable));
  for (size_t k = 0; k < n.unrecoverable_lives.size(); ++k)
    std::printf("%s%llu", k ? ", " : "", static_cast<unsigned long long>(n.unrecoverable_lives[k]));
  std::printf("]}\n");
  return 0;
}
