// The encodings that once gave one bundle a second file digest (docs/bundle-format.md, "One bundle, one
// encoding"), made from a valid bundle for the tests that check each is refused or seen as the same content.
#pragma once

#include <cstdint>
#include <cstring>

#include "agent_harness.h"

namespace agenttest {

// The signed region's length T: header, manifest and component table (docs/bundle-format.md).
inline uint32_t signed_len_of(const Bytes& b) { return 32u + (b[12] | b[13] << 8) + 80u * b[14]; }

// The bundle with the twin (r, n - s) of its signature: it verifies in plain ECDSA; the format refuses it.
inline Bytes with_high_s(Bytes b) {
  static const uint8_t kOrder[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17,
                                     0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
  const uint32_t t = signed_len_of(b);
  const uint8_t* der = b.data() + t + 12;
  const Bytes r(der + 4, der + 4 + der[3]);
  const uint8_t* s_at = der + 4 + der[3];
  uint8_t s[32] = {};
  std::memcpy(s + 32 - s_at[1], s_at + 2, s_at[1]);  // a low s has at most 32 bytes, no sign zero
  uint8_t high[33] = {};  // n - s, big-endian, behind a sign zero (its top bit is set)
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    const int d = kOrder[i] - s[i] - borrow;
    high[i + 1] = static_cast<uint8_t>(d & 0xFF);
    borrow = d < 0;
  }
  Bytes sig = {0x30, static_cast<uint8_t>(4 + r.size() + 33), 0x02, static_cast<uint8_t>(r.size())};
  sig.insert(sig.end(), r.begin(), r.end());
  sig.insert(sig.end(), {0x02, 33});
  sig.insert(sig.end(), high, high + 33);
  std::memset(b.data() + t + 12, 0, 72);
  std::memcpy(b.data() + t + 12, sig.data(), sig.size());
  b[t + 2] = static_cast<uint8_t>(sig.size());
  return b;
}

// The bundle with its signature made again with another nonce: the same content under another file digest.
inline Bytes resigned(Bytes b, const tftest::TestSigner& signer) {
  const uint32_t t = signed_len_of(b);
  const Bytes sig = signer.sign_with_fresh_nonce(b.data(), t);
  std::memset(b.data() + t + 12, 0, 72);
  std::memcpy(b.data() + t + 12, sig.data(), sig.size());
  b[t + 2] = static_cast<uint8_t>(sig.size());
  return b;
}

}  // namespace agenttest
