// A tiny test framework for the Cortex-M images (in the spirit of TFLM's micro_test.h): no heap, output
// through semihosting. Each test is a function registered in main.cpp's table; a failed check prints
// file:line and the expression, and the run ends with the fixed lines
//   "~~~ALL TESTS PASSED~~~" (only when nothing failed) and "N passed, M failed",
// then exits with the number of failed tests as the program's (and QEMU's) exit status.
#pragma once

#include <cstdint>

#include "semihost.h"
#include "tinyfleet/status.h"

namespace tt {

struct Test {
  const char* name;
  void (*fn)();
};

// Records a failed check in the running test; returns cond.
bool check(bool cond, const char* expr, const char* file, int line);
bool check_eq(uint64_t a, uint64_t b, const char* ea, const char* eb, const char* file, int line);
bool check_status(tinyfleet::Status got, tinyfleet::Status want, const char* expr, const char* file, int line);
void note(const char* text);  // context printed with the next failure (e.g. the vector's file name)

// Runs every test, prints the summary, returns the number of failed tests.
int run_all(const Test* tests, int count);

}  // namespace tt

#define TT_EXPECT(c) ::tt::check((c), #c, __FILE__, __LINE__)
#define TT_ASSERT(c) \
  do {               \
    if (!TT_EXPECT(c)) return; \
  } while (0)
#define TT_EXPECT_EQ(a, b) \
  ::tt::check_eq(static_cast<uint64_t>(a), static_cast<uint64_t>(b), #a, #b, __FILE__, __LINE__)
#define TT_ASSERT_EQ(a, b)                 \
  do {                                     \
    if (!TT_EXPECT_EQ(a, b)) return;       \
  } while (0)
#define TT_EXPECT_STATUS(expr, want) ::tt::check_status((expr), (want), #expr, __FILE__, __LINE__)
#define TT_ASSERT_STATUS(expr, want)                  \
  do {                                               \
    if (!TT_EXPECT_STATUS(expr, want)) return;       \
  } while (0)
