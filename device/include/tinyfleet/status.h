// One status enum for every result in the core and its ports.
// `NeedMoreBytes` is not an error: the caller feeds more input and calls again.
// The bundle verdicts carry exactly the names of docs/bundle-format.md ("Errors").
#pragma once

#include <cstdint>

namespace tinyfleet {

enum class Status : uint8_t {
  Ok = 0,
  NeedMoreBytes,

  // Bundle verdicts (docs/bundle-format.md), in the order of that table.
  BadMagic,
  UnsupportedVersion,
  MalformedHeader,
  Truncated,
  OutOfRange,
  Oversize,
  MalformedManifest,
  MalformedTable,
  OverlappingComponents,
  DuplicateComponent,
  MissingComponent,
  UnknownKeyId,
  BadSignature,
  WrongHardwareClass,
  WrongDevice,
  Expired,
  CounterTooLow,
  HashMismatch,

  // Device-side refusals of a valid bundle.
  BundleTooLarge,     // total_len does not fit the inactive bank
  BatteryLow,         // charge below the bundle's min_battery_pct: defer and retry
  HealthCheckFailed,  // golden vectors / latency / RAM / broker check failed

  // Caller, state and port results.
  InvalidArgument,    // the caller broke an API rule (a bug, not bad input)
  InvalidState,       // call not allowed in the current state
  BufferTooSmall,     // a caller-given buffer cannot hold the data
  NotFound,           // no valid record (e.g. no metadata copy)
  NoValidImage,       // boot selection found no verified image
  MalformedMessage,   // a protocol message from the outside world is malformed
  FlashError,         // the port refused or failed an operation
  FlashNotErased,     // NOR rule: write to bytes that are not erased
  FlashMisaligned,    // offset or length not a multiple of the write/erase unit
  PowerLost,          // host port fault injection: the power was cut
  CryptoError,        // the crypto port failed (not a verdict on the data)
};

// True for the verdicts listed in docs/bundle-format.md.
constexpr bool is_bundle_verdict(Status s) {
  return s >= Status::BadMagic && s <= Status::HashMismatch;
}

// Stable name of a status, e.g. "HashMismatch" (matches tests/vectors/index.json's "expect").
const char* status_name(Status s);

}  // namespace tinyfleet
