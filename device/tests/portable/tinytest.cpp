#include "tinytest.h"

#include "semihost.h"

namespace tt {
namespace {

namespace sh = tinyfleet::semihost;

int g_failures_in_test = 0;
const char* g_note = nullptr;
const Registration* g_first = nullptr;
const Registration* g_last = nullptr;
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

Registration::Registration(const char* suite_name, const char* test_name, const char*, int, TestFn test)
    : suite(suite_name), name(test_name), fn(test) {
  if (g_last == nullptr) {
    g_first = this;
  } else {
    g_last->next = this;
  }
  g_last = this;
}

void note(const char* text) { g_note = text; }

void log(const char* text) { sh::write(text); }

void log_u32(uint32_t value) { sh::write_u32(value); }

void fatal(const char* why) {
  sh::write("fatal: ");
  sh::write(why);
  sh::write("\n");
  sh::exit(0xF0);
}

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

int run_all() {
  int passed = 0, failed = 0;
  for (const Registration* t = g_first; t != nullptr; t = t->next) {
    g_failures_in_test = 0;
    g_note = nullptr;
    sh::write("[ RUN      ] ");
    sh::write(t->suite);
    sh::write(".");
    sh::write(t->name);
    sh::write("\n");
    t->fn();
    sh::write(g_failures_in_test == 0 ? "[       OK ] " : "[  FAILED  ] ");
    sh::write(t->suite);
    sh::write(".");
    sh::write(t->name);
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
