// The GoogleTest back end of tinytest.h: each TT_TEST becomes a GoogleTest test of agent_tests, and a failed
// check a GoogleTest failure at the check's file:line.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tinytest.h"

namespace tt {
namespace {

const char* g_note = nullptr;

class Adapter final : public ::testing::Test {
 public:
  explicit Adapter(TestFn fn) : fn_(fn) {}
  void TestBody() override {
    g_note = nullptr;
    fn_();
  }

 private:
  TestFn fn_;
};

std::string context() { return g_note != nullptr ? std::string(" [") + g_note + "]" : std::string(); }

}  // namespace

Registration::Registration(const char* suite_name, const char* test_name, const char* file, int line, TestFn test)
    : suite(suite_name), name(test_name), fn(test) {
  ::testing::RegisterTest(suite_name, test_name, nullptr, nullptr, file, line,
                          [test]() -> ::testing::Test* { return new Adapter(test); });
}

bool check(bool cond, const char* expr, const char* file, int line) {
  if (!cond) ADD_FAILURE_AT(file, line) << expr << context();
  return cond;
}

bool check_eq(uint64_t a, uint64_t b, const char* ea, const char* eb, const char* file, int line) {
  if (a != b) ADD_FAILURE_AT(file, line) << ea << " == " << eb << " (" << a << " vs " << b << ")" << context();
  return a == b;
}

bool check_status(tinyfleet::Status got, tinyfleet::Status want, const char* expr, const char* file, int line) {
  if (got != want) {
    ADD_FAILURE_AT(file, line) << expr << " returned " << tinyfleet::status_name(got) << ", expected "
                               << tinyfleet::status_name(want) << context();
  }
  return got == want;
}

void note(const char* text) { g_note = text; }

void log(const char* text) { std::fputs(text, stdout); }

void log_u32(uint32_t value) { std::printf("%lu", static_cast<unsigned long>(value)); }

void fatal(const char* why) {
  std::fprintf(stderr, "fatal: %s\n", why);
  std::abort();
}

}  // namespace tt
