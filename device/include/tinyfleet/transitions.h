// The update cycle as data: every (state, event, outcome) -> state row lives in ONE table
// (src/core/transitions.cpp). The agent computes an outcome for each event and looks the row up; a pair
// that has no row is ignored. docs/device-protocol.md's diagram is generated from this table
// (tests/test_transitions_doc.cpp checks they match).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyfleet {

// Wire codes (TFSR from_state / to_state): never renumber.
enum class AgentState : uint8_t {
  PowerOn = 0,
  Idle = 1,
  Checking = 2,
  Deferred = 3,
  Downloading = 4,
  Rebooting = 5,
  Trial = 6,
  Failed = 7,
};
constexpr uint8_t kAgentStateCount = 8;

// Wire codes (TFSR event): never renumber.
enum class AgentEvent : uint8_t {
  Boot = 1,
  Desired = 2,
  Meta = 3,
  Block = 4,
  ConnectionUp = 5,
  ConnectionDown = 6,
  Tick = 7,
  Battery = 8,
  HealthResult = 9,
};

// What handling an event concluded; the table maps it to the next state.
enum class Outcome : uint8_t {
  Confirmed,      // Boot: confirmed image
  TrialBoot,      // Boot: trial image, health check follows
  Reverted,       // Boot: boot selection reverted a trial
  NewUpdate,      // Desired: a new bundle to install
  UpToDate,       // Desired or Meta: already running it (the same digest, or the same signed content)
  Refused,        // Desired/Meta: update refused (reason in the report)
  Stale,          // Desired: replayed or malformed message, state unchanged
  Accepted,       // Meta/Battery/Tick: verified, preconditions met, download starts
  BatteryLow,     // Meta/Tick: battery below the bundle's minimum
  ComponentReady, // Block: a component is in flash and verified
  Staged,         // image complete (or every component copied), trial installed, reboot requested
  Failed,         // Block: download failed (hash, flash)
  Pass,           // HealthResult/ConnectionUp: trial confirmed
  Fail,           // HealthResult/Tick: trial reverted, reboot requested
};

// Five bytes a row. The diagram labels live apart (transition_label): the agent never reads them, so they
// stay out of a device image.
struct Transition {
  AgentState from;
  AgentEvent event;
  Outcome outcome;
  AgentState to;
  bool report;  // publish a TFSR state report for it
};

// The table, in diagram order.
const Transition* transitions(size_t& count);
// The row for (from, event, outcome), or nullptr (the event is ignored in that state).
const Transition* find_transition(AgentState from, AgentEvent event, Outcome outcome);
// The diagram edge label of a row of transitions().
const char* transition_label(const Transition& row);
// The diagram edge label of a row of transitions().
const char* transition_label(const Transition& row);

const char* state_name(AgentState s);
const char* event_name(AgentEvent e);

}  // namespace tinyfleet
