// An invariant of a fuzz target: when it does not hold, say which and abort (libFuzzer keeps the input).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace fuzzsupport {

inline void require(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "invariant broken: %s\n", invariant);
  std::abort();
}

}  // namespace fuzzsupport
