#include "tinytest.h"

namespace tt {
namespace {

namespace sh = tinyfleet::semihost;

int g_failures_in_test = 0;
const char* g_note = nullptr;
constexpr int kMaxReportedChecks = 10;  // per test: a loop of failing checks stays readable

bool report(const char* file, int line) {
  ++g_failures_in_test;
  if (g_failures_in_test > kMaxReportedChecks) return false;
  sh::write("  FAILED at ");
  sh::write(file);
  sh::write(":");
  sh::write_u32(static_cast<uint32_t>(line));
  if (g_note != nullptr) {
    sh::write(" [");
    sh::write(g_note);
    sh::write("]");
  }
  sh::write(": ");
  return true;
}

void write_u64(uint64_t v) {
  if (v > 0xFFFFFFFFull) {
    sh::write("0x");
    const uint8_t be[8] = {uint8_t(v >> 56), uint8_t(v >> 48), uint8_t(v >> 40), uint8_t(v >> 32),
                           uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8),  uint8_t(v)};
    sh::write_hex(be, 8);
  } else {
    sh::write_u32(static_cast<uint32_t>(v));
  }
}

}  // namespace

void note(const char* text) { g_note = text; }

bool check(bool cond, const char* expr, const char* file, int line) {
  if (cond) return true;
  if (report(file, line)) {
    sh::write(expr);
    sh::write("\n");
  }
  return false;
}

bool check_eq(uint64_t a, uint64_t b, const char* ea, const char* eb, const char* file, int line) {
  if (a == b) return true;
  if (report(file, line)) {
    sh::write(ea);
    sh::write(" == ");
    sh::write(eb);
    sh::write(" (");
    write_u64(a);
    sh::write(" vs ");
    write_u64(b);
    sh::write(")\n");
  }
  return false;
}

bool check_status(tinyfleet::Status got, tinyfleet::Status want, const char* expr, const char* file, int line) {
  if (got == want) return true;
  if (report(file, line)) {
    sh::write(expr);
    sh::write(" returned ");
    sh::write(tinyfleet::status_name(got));
    sh::write(", expected ");
    sh::write(tinyfleet::status_name(want));
    sh::write("\n");
  }
  return false;
}

int run_all(const Test* tests, int count) {
  int passed = 0, failed = 0;
  for (int i = 0; i < count; ++i) {
    g_failures_in_test = 0;
    g_note = nullptr;
    sh::write("[ RUN      ] ");
    sh::write(tests[i].name);
    sh::write("\n");
    tests[i].fn();
    sh::write(g_failures_in_test == 0 ? "[       OK ] " : "[  FAILED  ] ");
    sh::write(tests[i].name);
    sh::write("\n");
    ++(g_failures_in_test == 0 ? passed : failed);
  }
  if (failed == 0) sh::write("~~~ALL TESTS PASSED~~~\n");
  sh::write_u32(static_cast<uint32_t>(passed));
  sh::write(" passed, ");
  sh::write_u32(static_cast<uint32_t>(failed));
  sh::write(" failed\n");
  return failed;
}

}  // namespace tt
