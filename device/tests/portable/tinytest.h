// A tiny test framework for the tests that run both on the host and on the Cortex-M4 under QEMU (in the
// spirit of TFLM's micro_test.h): no heap, no exceptions. A test is written once with TT_TEST and the
// TT_EXPECT/TT_ASSERT checks below, and one of two back ends runs it:
//   - tinytest.cpp runs the registered tests itself and prints through semihosting (the QEMU image, and
//     the same program built natively): a failed check prints file:line and the expression, and the run
//     ends with the fixed lines "~~~ALL TESTS PASSED~~~" (only when nothing failed) and "N passed, M failed",
//     the number of failed tests being the program's (and QEMU's) exit status;
//   - tinytest_gtest.cpp registers each test with GoogleTest (agent_tests, ctest), a failed check being a
//     GoogleTest failure at its file:line.
// TT_FULL_SCALE is defined in the GoogleTest build: a test may then cover more cases than an emulated
// Cortex-M4 runs in reasonable time.
#pragma once

#include <cstdint>

#include "tinyfleet/status.h"

namespace tt {

using TestFn = void (*)();

// A test, registered by TT_TEST during static initialisation, in the order of definition.
struct Registration {
  Registration(const char* suite, const char* name, const char* file, int line, TestFn fn);
  const char* suite;
  const char* name;
  TestFn fn;
  mutable const Registration* next = nullptr;  // the next registered test (tinytest.cpp links them)
};

// Records a failed check in the running test; returns cond.
bool check(bool cond, const char* expr, const char* file, int line);
bool check_eq(uint64_t a, uint64_t b, const char* ea, const char* eb, const char* file, int line);
bool check_status(tinyfleet::Status got, tinyfleet::Status want, const char* expr, const char* file, int line);
void note(const char* text);  // context printed with the next failure (e.g. the vector's file name)
void log(const char* text);   // a line of the test's own output (figures, context of a failure)
void log_u32(uint32_t value);
// The test setup is broken (not a failed check): print why and stop the run.
[[noreturn]] void fatal(const char* why);

// tinytest.cpp: runs every registered test, prints the summary, returns the number of failed tests.
int run_all();

}  // namespace tt

#define TT_TEST(suite, name)                                                                       \
  static void tt_test_##suite##_##name();                                                          \
  static const ::tt::Registration tt_registration_##suite##_##name(#suite, #name, __FILE__, __LINE__, \
                                                                  tt_test_##suite##_##name);      \
  static void tt_test_##suite##_##name()

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
