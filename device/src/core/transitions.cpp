// The update cycle's only transition table. Adding a row here is the whole change for a new transition;
// then regenerate the diagram in docs/device-protocol.md (TINYFLEET_UPDATE_DOCS=1 build/device/agent_tests
// --gtest_filter='TransitionsDoc.*').
#include "tinyfleet/transitions.h"

#include <array>
#include <utility>

namespace tinyfleet {
namespace {

using S = AgentState;
using E = AgentEvent;
using O = Outcome;

// A row as written: the transition and its diagram label.
struct Row {
  Transition t;
  const char* label;
};

constexpr Row kRows[] = {
    {{S::PowerOn, E::Boot, O::Confirmed, S::Idle, true}, "confirmed image"},
    {{S::PowerOn, E::Boot, O::TrialBoot, S::Trial, true}, "trial image"},
    {{S::PowerOn, E::Boot, O::Reverted, S::Idle, true}, "trial reverted"},

    {{S::Idle, E::Desired, O::NewUpdate, S::Checking, true}, "new bundle"},
    {{S::Idle, E::Desired, O::UpToDate, S::Idle, true}, "up to date"},
    {{S::Idle, E::Desired, O::Refused, S::Failed, true}, "too large or failed before"},
    {{S::Idle, E::Desired, O::Stale, S::Idle, true}, "stale or malformed"},
    {{S::Failed, E::Desired, O::NewUpdate, S::Checking, true}, "new bundle"},
    {{S::Failed, E::Desired, O::UpToDate, S::Idle, true}, "up to date"},
    {{S::Failed, E::Desired, O::Refused, S::Failed, true}, "too large or failed before"},
    {{S::Failed, E::Desired, O::Stale, S::Failed, true}, "stale or malformed"},
    {{S::Checking, E::Desired, O::NewUpdate, S::Checking, true}, "superseded"},
    {{S::Checking, E::Desired, O::UpToDate, S::Idle, true}, "superseded, up to date"},
    {{S::Checking, E::Desired, O::Refused, S::Failed, true}, "superseded, refused"},
    {{S::Checking, E::Desired, O::Stale, S::Checking, true}, "stale or malformed"},
    {{S::Deferred, E::Desired, O::NewUpdate, S::Checking, true}, "superseded"},
    {{S::Deferred, E::Desired, O::UpToDate, S::Idle, true}, "superseded, up to date"},
    {{S::Deferred, E::Desired, O::Refused, S::Failed, true}, "superseded, refused"},
    {{S::Deferred, E::Desired, O::Stale, S::Deferred, true}, "stale or malformed"},
    {{S::Downloading, E::Desired, O::NewUpdate, S::Checking, true}, "superseded"},
    {{S::Downloading, E::Desired, O::UpToDate, S::Idle, true}, "superseded, up to date"},
    {{S::Downloading, E::Desired, O::Refused, S::Failed, true}, "superseded, refused"},
    {{S::Downloading, E::Desired, O::Stale, S::Downloading, true}, "stale or malformed"},

    {{S::Checking, E::Meta, O::Accepted, S::Downloading, true}, "verified"},
    {{S::Checking, E::Meta, O::Staged, S::Rebooting, true}, "all copied, staged"},
    {{S::Checking, E::Meta, O::BatteryLow, S::Deferred, true}, "battery low"},
    {{S::Checking, E::Meta, O::Refused, S::Failed, true}, "refused"},
    {{S::Checking, E::Meta, O::UpToDate, S::Idle, true}, "same content, up to date"},

    {{S::Deferred, E::Battery, O::Accepted, S::Downloading, true}, "battery ok"},
    {{S::Deferred, E::Battery, O::Staged, S::Rebooting, true}, "battery ok, all copied"},
    {{S::Deferred, E::Battery, O::Refused, S::Failed, true}, "refused"},
    {{S::Deferred, E::Tick, O::Accepted, S::Downloading, true}, "retry, battery ok"},
    {{S::Deferred, E::Tick, O::Staged, S::Rebooting, true}, "retry, all copied"},
    {{S::Deferred, E::Tick, O::BatteryLow, S::Deferred, true}, "retry, still low"},
    {{S::Deferred, E::Tick, O::Refused, S::Failed, true}, "refused"},

    {{S::Downloading, E::Block, O::ComponentReady, S::Downloading, true}, "component verified"},
    {{S::Downloading, E::Block, O::Staged, S::Rebooting, true}, "image verified, staged"},
    {{S::Downloading, E::Block, O::Failed, S::Failed, true}, "hash or flash failure"},

    {{S::Trial, E::HealthResult, O::Pass, S::Idle, true}, "healthy, confirmed"},
    {{S::Trial, E::ConnectionUp, O::Pass, S::Idle, true}, "broker reached, confirmed"},
    {{S::Trial, E::HealthResult, O::Fail, S::Rebooting, true}, "unhealthy, revert"},
    {{S::Trial, E::Tick, O::Fail, S::Rebooting, true}, "timeout, revert"},
};
constexpr size_t kRowCount = sizeof(kRows) / sizeof(kRows[0]);

// The rows without their labels, built at compile time: the agent looks rows up here, and the labels (only
// the diagram test reads them) stay out of a device image.
template <size_t... I>
constexpr std::array<Transition, kRowCount> strip_labels(std::index_sequence<I...>) {
  return {{kRows[I].t...}};
}
constexpr std::array<Transition, kRowCount> kTable = strip_labels(std::make_index_sequence<kRowCount>{});

}  // namespace

const Transition* transitions(size_t& count) {
  count = kRowCount;
  return kTable.data();
}

const Transition* find_transition(AgentState from, AgentEvent event, Outcome outcome) {
  for (const Transition& t : kTable) {
    if (t.from == from && t.event == event && t.outcome == outcome) return &t;
  }
  return nullptr;
}

const char* transition_label(const Transition& row) { return kRows[&row - kTable.data()].label; }

const char* state_name(AgentState s) {
  switch (s) {
    case S::PowerOn: return "POWERON";
    case S::Idle: return "IDLE";
    case S::Checking: return "CHECKING";
    case S::Deferred: return "DEFERRED";
    case S::Downloading: return "DOWNLOADING";
    case S::Rebooting: return "REBOOTING";
    case S::Trial: return "TRIAL";
    case S::Failed: return "FAILED";
  }
  return "?";
}

const char* event_name(AgentEvent e) {
  switch (e) {
    case E::Boot: return "Boot";
    case E::Desired: return "Desired";
    case E::Meta: return "Meta";
    case E::Block: return "Block";
    case E::ConnectionUp: return "ConnectionUp";
    case E::ConnectionDown: return "ConnectionDown";
    case E::Tick: return "Tick";
    case E::Battery: return "Battery";
    case E::HealthResult: return "HealthResult";
  }
  return "?";
}

}  // namespace tinyfleet
