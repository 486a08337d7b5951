// libFuzzer target: the metadata record decoder, and boot selection over metadata copies taken from the
// input (the rest of the input fills the banks), on the host flash emulator.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "flash_emulator.h"
#include "mbedtls_crypto.h"
#include "tinyfleet/boot.h"

using namespace tinyfleet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MetadataRecord rec;
  if (decode_metadata(data, size, rec) == Status::Ok) {
    uint8_t again[kMetadataRecordLen];
    encode_metadata(rec, again);
    if (std::memcmp(again, data, kMetadataRecordLen) != 0) std::abort();  // decode is exact
  }
  static host::MbedtlsCrypto crypto;
  host::FlashEmulator flash(host::FlashLayout::dual_bank(256, 8, 4, 0xFF));
  const FlashArea order[] = {FlashArea::Meta0, FlashArea::Meta1, FlashArea::Bank0, FlashArea::Bank1};
  size_t pos = 0;
  for (FlashArea a : order) {
    auto& mem = flash.raw(a);
    size_t n = size - pos < mem.size() ? size - pos : mem.size();
    if (a == FlashArea::Meta0 || a == FlashArea::Meta1) n = n < kMetadataRecordLen ? n : kMetadataRecordLen;
    std::memcpy(mem.data(), data + pos, n);
    pos += n;
  }
  BootSelector selector(flash, crypto, 3);
  BootDecision d;
  for (int i = 0; i < 4; ++i) {
    Status s = selector.select(d);
    if (s == Status::Ok && d.bank > 1) std::abort();
    if (s != Status::Ok) break;
  }
  return 0;
}
