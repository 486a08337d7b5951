// The update cycle's transition table (src/core/transitions.cpp) as the agent uses it on the target.
#include <cstring>

#include "tinytest.h"
#include "tinyfleet/transitions.h"

using namespace tinyfleet;

TT_TEST(Transitions, RowsAreUniqueAndFound) {
  size_t n = 0;
  const Transition* rows = transitions(n);
  TT_ASSERT(rows != nullptr);
  TT_ASSERT(n >= 10);
  for (size_t i = 0; i < n; ++i) {
    // find_transition returns this very row: no earlier row has the same (state, event, outcome).
    TT_EXPECT(find_transition(rows[i].from, rows[i].event, rows[i].outcome) == &rows[i]);
    TT_EXPECT(transition_label(rows[i]) != nullptr && transition_label(rows[i])[0] != '\0');
  }
}

TT_TEST(Transitions, UnlistedPairsAreIgnored) {
  size_t n = 0;
  const Transition* rows = transitions(n);
  // Every (state, event, outcome) the table does not list is ignored (nullptr), e.g. a Block while Idle.
  uint32_t listed = 0, ignored = 0;
  for (uint8_t s = 0; s < kAgentStateCount; ++s) {
    for (uint8_t e = 1; e <= static_cast<uint8_t>(AgentEvent::HealthResult); ++e) {
      for (uint8_t o = 0; o <= static_cast<uint8_t>(Outcome::Fail); ++o) {
        const Transition* t = find_transition(static_cast<AgentState>(s), static_cast<AgentEvent>(e),
                                              static_cast<Outcome>(o));
        bool in_table = false;
        for (size_t i = 0; i < n; ++i)
          in_table |= rows[i].from == static_cast<AgentState>(s) && rows[i].event == static_cast<AgentEvent>(e) &&
                      rows[i].outcome == static_cast<Outcome>(o);
        TT_EXPECT(in_table == (t != nullptr));
        ++(t != nullptr ? listed : ignored);
      }
    }
  }
  TT_EXPECT_EQ(listed, n);
  TT_EXPECT(find_transition(AgentState::Idle, AgentEvent::Block, Outcome::ComponentReady) == nullptr);
  TT_EXPECT(ignored > 0);
}

TT_TEST(Transitions, Names) {
  size_t n = 0;
  const Transition* rows = transitions(n);
  for (size_t i = 0; i < n; ++i) {
    TT_EXPECT(std::strcmp(state_name(rows[i].from), "?") != 0);
    TT_EXPECT(std::strcmp(state_name(rows[i].to), "?") != 0);
    TT_EXPECT(std::strcmp(event_name(rows[i].event), "?") != 0);
  }
  TT_EXPECT(std::strcmp(state_name(AgentState::Downloading), "DOWNLOADING") == 0);
  TT_EXPECT(std::strcmp(event_name(AgentEvent::HealthResult), "HealthResult") == 0);
  // A trial that fails its health check always ends in a reboot (into the confirmed image).
  const Transition* t = find_transition(AgentState::Trial, AgentEvent::HealthResult, Outcome::Fail);
  TT_ASSERT(t != nullptr);
  TT_EXPECT(t->to == AgentState::Rebooting);
}
