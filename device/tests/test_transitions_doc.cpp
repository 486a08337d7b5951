// docs/device-protocol.md's state diagram is generated from the transition table: this test renders the
// table and fails when the doc differs. TINYFLEET_UPDATE_DOCS=1 rewrites the doc's generated block.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "tinyfleet/transitions.h"

using namespace tinyfleet;

namespace {

const char kBegin[] = "<!-- BEGIN GENERATED TRANSITIONS -->\n";
const char kEnd[] = "<!-- END GENERATED TRANSITIONS -->";

std::string doc_path() { return std::string(TINYFLEET_VECTORS_DIR) + "/../../docs/device-protocol.md"; }

std::string render() {
  size_t n = 0;
  const Transition* t = transitions(n);
  std::ostringstream out;
  out << "```mermaid\nstateDiagram-v2\n    [*] --> POWERON\n";
  for (size_t i = 0; i < n; ++i) {
    out << "    " << state_name(t[i].from) << " --> " << state_name(t[i].to) << ": " << event_name(t[i].event)
        << " / " << transition_label(t[i]) << "\n";
  }
  out << "    REBOOTING --> [*]\n```\n";
  return out.str();
}

}  // namespace

TEST(TransitionsDoc, EveryRowIsUniqueAndReachable) {
  size_t n = 0;
  const Transition* t = transitions(n);
  ASSERT_GT(n, 0u);
  std::set<std::tuple<int, int, int>> keys;
  std::set<int> reached = {static_cast<int>(AgentState::PowerOn)};
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(keys.insert({int(t[i].from), int(t[i].event), int(t[i].outcome)}).second) << i;
    EXPECT_EQ(find_transition(t[i].from, t[i].event, t[i].outcome), &t[i]);
    reached.insert(static_cast<int>(t[i].to));
  }
  EXPECT_EQ(reached.size(), size_t{kAgentStateCount});
}

TEST(TransitionsDoc, DiagramInDocsMatchesTheTable) {
  std::ifstream in(doc_path());
  ASSERT_TRUE(in) << "cannot open " << doc_path();
  std::stringstream buf;
  buf << in.rdbuf();
  std::string doc = buf.str();
  size_t b = doc.find(kBegin);
  size_t e = doc.find(kEnd);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  b += sizeof(kBegin) - 1;
  const std::string want = render();
  if (std::getenv("TINYFLEET_UPDATE_DOCS") != nullptr) {
    doc.replace(b, e - b, want);
    std::ofstream(doc_path()) << doc;
    return;
  }
  EXPECT_EQ(doc.substr(b, e - b), want)
      << "regenerate with: TINYFLEET_UPDATE_DOCS=1 build/device/agent_tests --gtest_filter='TransitionsDoc.*'";
}
