// Streaming bundle verifier: feed the bundle file in order, in chunks of any size. The metadata prefix is
// gathered in a fixed buffer, parsed, its signature and policy checked before any payload byte is accepted;
// then each payload is hashed as it streams (no copy) and compared with the signed table.
// Errors are sticky: after the first one every call returns it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/config.h"
#include "tinyfleet/ports.h"
#include "tinyfleet/status.h"

namespace tinyfleet {

class StreamVerifier {
 public:
  StreamVerifier(Crypto& crypto, const VerifyPolicy& policy) : crypto_(crypto), policy_(policy) {}

  void reset();

  // NeedMoreBytes while the bundle is incomplete and nothing is wrong; Ok once total_len bytes have
  // arrived and every payload matched; else the first verdict. Bytes past total_len are OutOfRange
  // (after the bytes before them were checked).
  Status feed(const uint8_t* data, size_t len);

  // End of input: Ok if complete and valid, Truncated if it ended early, else the sticky verdict.
  Status finish();

  // True once the prefix is parsed, signed by a trusted key and passes policy: info() and prefix() are valid.
  bool prefix_verified() const { return prefix_ok_; }
  const BundleInfo& info() const { return info_; }
  const uint8_t* prefix() const { return prefix_; }  // [0, info().header.payload_offset)
  uint32_t position() const { return pos_; }
  // Number of components (in offset order) whose hash has matched so far.
  uint8_t verified_components() const { return cur_; }

 private:
  Status fail(Status s) { return status_ = s; }
  Status feed_prefix(const uint8_t*& data, size_t& len);
  Status feed_payload(const uint8_t* data, size_t len);

  Crypto& crypto_;
  const VerifyPolicy& policy_;
  Status status_ = Status::NeedMoreBytes;
  bool prefix_ok_ = false;
  uint32_t pos_ = 0;
  uint32_t need_ = kHeaderLen;
  uint8_t cur_ = 0;                               // index into order_ of the component being hashed
  uint8_t order_[TINYFLEET_MAX_COMPONENTS] = {};  // component indices sorted by offset
  Sha256Context sha_;
  BundleInfo info_;
  uint8_t prefix_[TINYFLEET_PREFIX_BUFFER_SIZE];
};

}  // namespace tinyfleet
