#include "tinyfleet/status.h"

namespace tinyfleet {

const char* status_name(Status s) {
  switch (s) {
    case Status::Ok: return "Ok";
    case Status::NeedMoreBytes: return "NeedMoreBytes";
    case Status::BadMagic: return "BadMagic";
    case Status::UnsupportedVersion: return "UnsupportedVersion";
    case Status::MalformedHeader: return "MalformedHeader";
    case Status::Truncated: return "Truncated";
    case Status::OutOfRange: return "OutOfRange";
    case Status::Oversize: return "Oversize";
    case Status::MalformedManifest: return "MalformedManifest";
    case Status::MalformedTable: return "MalformedTable";
    case Status::OverlappingComponents: return "OverlappingComponents";
    case Status::DuplicateComponent: return "DuplicateComponent";
    case Status::MissingComponent: return "MissingComponent";
    case Status::UnknownKeyId: return "UnknownKeyId";
    case Status::BadSignature: return "BadSignature";
    case Status::WrongHardwareClass: return "WrongHardwareClass";
    case Status::WrongDevice: return "WrongDevice";
    case Status::Expired: return "Expired";
    case Status::CounterTooLow: return "CounterTooLow";
    case Status::HashMismatch: return "HashMismatch";
    case Status::BundleTooLarge: return "BundleTooLarge";
    case Status::BatteryLow: return "BatteryLow";
    case Status::HealthCheckFailed: return "HealthCheckFailed";
    case Status::InvalidArgument: return "InvalidArgument";
    case Status::InvalidState: return "InvalidState";
    case Status::BufferTooSmall: return "BufferTooSmall";
    case Status::NotFound: return "NotFound";
    case Status::NoValidImage: return "NoValidImage";
    case Status::MalformedMessage: return "MalformedMessage";
    case Status::FlashError: return "FlashError";
    case Status::FlashNotErased: return "FlashNotErased";
    case Status::FlashMisaligned: return "FlashMisaligned";
    case Status::PowerLost: return "PowerLost";
    case Status::CryptoError: return "CryptoError";
  }
  return "Unknown";
}

}  // namespace tinyfleet
