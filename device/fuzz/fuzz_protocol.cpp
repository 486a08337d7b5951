// libFuzzer target: the device-protocol decoders (docs/device-protocol.md) and topic parser on arbitrary
// bytes. Besides memory safety: whatever decodes re-encodes to a form that decodes to the same encoding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tinyfleet/protocol.h"

using namespace tinyfleet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DesiredState d;
  if (decode_desired(data, size, d) == Status::Ok) {
    uint8_t a[kDesiredLen], b[kDesiredLen];
    encode_desired(d, a);
    DesiredState d2;
    if (decode_desired(a, sizeof a, d2) != Status::Ok) std::abort();
    encode_desired(d2, b);
    if (std::memcmp(a, b, sizeof a) != 0) std::abort();
  }
  BlockHeader h;
  const uint8_t* block = nullptr;
  size_t block_len = 0;
  if (decode_block(data, size, h, block, block_len) == Status::Ok) {
    if (block < data || block + block_len > data + size) std::abort();
  }
  StateReport r;
  if (decode_report(data, size, r) == Status::Ok) {
    uint8_t a[kReportLen], b[kReportLen];
    encode_report(r, a);
    StateReport r2;
    if (decode_report(a, sizeof a, r2) != Status::Ok) std::abort();
    encode_report(r2, b);
    if (std::memcmp(a, b, sizeof a) != 0) std::abort();
  }
  Presence p;
  if (decode_presence(data, size, p) == Status::Ok) {
    uint8_t a[kPresenceLen], b[kPresenceLen];
    encode_presence(p, a);
    Presence p2;
    if (decode_presence(a, sizeof a, p2) != Status::Ok) std::abort();
    encode_presence(p2, b);
    if (std::memcmp(a, b, sizeof a) != 0) std::abort();
  }
  ParsedTopic t = parse_topic(reinterpret_cast<const char*>(data), size, "dev-0001");
  (void)t;
  return 0;
}
