// libFuzzer target: the agent's progress record (progress.h): the decoder on arbitrary bytes, and the
// two-copy store over a Scratch area whose copies are the input's first two kProgressRecordLen-byte pieces.
// Besides memory safety: a record that decodes re-encodes to the same bytes; load() returns the newest valid
// copy (by wrapping seq) or NotFound when neither is; store() writes the other copy with seq + 1, leaves the
// previous one as it was, and load() then returns what was stored.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "support/progress_input.h"
#include "support/require.h"

using namespace tinyfleet;
using fuzzsupport::require;

namespace {

bool same(const ProgressRecord& a, const ProgressRecord& b) {
  uint8_t ea[kProgressRecordLen], eb[kProgressRecordLen];
  encode_progress(a, ea);
  encode_progress(b, eb);
  return std::memcmp(ea, eb, sizeof ea) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ProgressRecord rec;
  if (decode_progress(data, size, rec) == Status::Ok) {
    uint8_t again[kProgressRecordLen];
    encode_progress(rec, again);
    require(std::memcmp(again, data, kProgressRecordLen) == 0, "a progress record re-encodes to its bytes");
  }

  host::FlashEmulator flash(fuzzsupport::progress_layout());
  fuzzsupport::load_progress_input(data, size, flash);
  ProgressRecord copy[2];
  bool valid[2];
  for (int c = 0; c < 2; ++c) {
    const uint8_t* at = flash.raw(FlashArea::Scratch).data() + c * fuzzsupport::kProgressCopySpan;
    valid[c] = decode_progress(at, kProgressRecordLen, copy[c]) == Status::Ok;
  }
  int newest = -1;
  if (valid[0] && (!valid[1] || static_cast<int32_t>(copy[0].seq - copy[1].seq) > 0)) {
    newest = 0;
  } else if (valid[1]) {
    newest = 1;
  }

  ProgressStore store(flash);
  require(store.available(), "the fuzz layout has room for two copies");
  ProgressRecord loaded;
  const Status s = store.load(loaded);
  require((s == Status::Ok) == (newest >= 0), "load() finds a record exactly when a copy is valid");
  if (newest < 0) return 0;
  require(same(loaded, copy[newest]), "load() returns the newest valid copy");

  const std::vector<uint8_t> before = flash.raw(FlashArea::Scratch);
  loaded.epoch += 1;
  require(store.store(loaded) == Status::Ok, "store() succeeds on a healthy flash");
  require(loaded.seq == copy[newest].seq + 1, "store() numbers the record after the newest");
  const size_t kept = static_cast<size_t>(newest) * fuzzsupport::kProgressCopySpan;
  require(std::memcmp(flash.raw(FlashArea::Scratch).data() + kept, before.data() + kept, kProgressRecordLen) == 0,
          "store() leaves the newest copy as it was");
  ProgressRecord again;
  require(store.load(again) == Status::Ok && same(again, loaded), "load() returns what store() wrote");
  return 0;
}
