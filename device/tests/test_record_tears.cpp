// Every cut of every store of the two persistent records, on all 24 flash configurations: the boot
// metadata (each transition of an update: provision, install as trial, a trial boot's count, confirm,
// revert) and the agent's progress record (the first record into blank flash, a download checkpoint into the
// other blank copy, a failed attempt over the older copy: each situation a store meets). Each store is one
// erase and one write; each is cut before it, after it, and torn at every length the NOR model can express
// (support/flash_configs.h, every_tear). After the cut the record loads as exactly the old one (or, only when
// the whole write landed, the new one), and the store done again from there gives the new one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "flash_emulator.h"
#include "support/flash_configs.h"
#include "tinyfleet/boot.h"
#include "tinyfleet/metadata.h"
#include "tinyfleet/progress.h"

using namespace tinyfleet;
using host::CutMode;
using host::FlashEmulator;
using host::FlashLayout;
using tftest::FlashConfig;

namespace {

using Bytes = std::vector<uint8_t>;

// One store of a record: runs it on the flash and returns its status.
using Store = std::function<Status(FlashEmulator&)>;
// The record as loaded, without its sequence number (empty: none valid).
using Load = std::function<Bytes(FlashEmulator&)>;

// True if the range of `op` holds the bytes `clean` (the area after a clean store) has there.
bool written(FlashEmulator& f, const host::FlashOp& op, const Bytes& clean) {
  const Bytes& now = f.raw(op.area);
  return std::equal(now.begin() + op.offset, now.begin() + op.offset + op.len, clean.begin() + op.offset);
}

struct Counts {
  uint32_t cut_points = 0;  // every cut: before, after, and each expressible tear
  uint32_t torn = 0;
  uint32_t states_checked = 0;        // distinct flash states after a cut, each loaded and stored again
  uint32_t same_as_whole_erase = 0;   // erase tears past the last programmed byte
  uint32_t same_as_previous_tear = 0;  // tears that left the bytes the previous tear left
};

// One past the last byte of `op`'s range that is not erased, in the flash before the store.
size_t programmed_extent(FlashEmulator& f, const std::vector<Bytes>& before_areas,
                         std::initializer_list<FlashArea> areas, const host::FlashOp& op) {
  size_t i = 0;
  for (FlashArea a : areas) {
    if (a == op.area) break;
    ++i;
  }
  const Bytes& mem = before_areas.at(i);
  const uint8_t erased = f.geometry(op.area).erased_value;
  size_t extent = 0;
  for (size_t j = 0; j < op.len; ++j)
    if (mem[op.offset + j] != erased) extent = j + 1;
  return extent;
}

// Sweeps every cut of `store` from the flash state the caller set up; `areas` are the ones the record lives
// in (restored before each cut). Leaves the flash as after a clean store.
void sweep_store(FlashEmulator& f, std::initializer_list<FlashArea> areas, const Store& store, const Load& load,
                 const char* what, const FlashConfig& cfg, Counts& counts) {
  std::vector<Bytes> before_areas;
  for (FlashArea a : areas) before_areas.push_back(f.raw(a));
  auto restore = [&]() {
    size_t i = 0;
    for (FlashArea a : areas) f.raw(a) = before_areas[i++];
    f.power_on();
    f.disarm();
  };
  const Bytes before = load(f);
  const size_t first_op = f.ops().size();
  ASSERT_EQ(store(f), Status::Ok) << what << ", " << cfg.name();
  const Bytes after = load(f);
  ASSERT_NE(before, after) << what;
  const std::vector<host::FlashOp> ops(f.ops().begin() + static_cast<std::ptrdiff_t>(first_op), f.ops().end());
  ASSERT_EQ(ops.size(), 2u) << what << ": a store is one erase and one write";
  ASSERT_EQ(ops[0].kind, host::FlashOpKind::Erase);
  ASSERT_EQ(ops[1].kind, host::FlashOpKind::Write);
  std::vector<Bytes> after_areas;
  for (FlashArea a : areas) after_areas.push_back(f.raw(a));
  auto after_raw = [&](FlashArea area) -> const Bytes& {
    size_t i = 0;
    for (FlashArea a : areas) {
      if (a == area) break;
      ++i;
    }
    return after_areas.at(i);
  };

  for (uint64_t k = 0; k < ops.size(); ++k) {
    struct Cut {
      CutMode mode;
      uint32_t per_mille;
    };
    std::vector<Cut> cuts = {{CutMode::Before, 0}, {CutMode::After, 0}};
    // An erase torn past the last programmed byte of its range leaves what the whole erase leaves (the After
    // cut): such tears are counted, not rerun.
    const size_t extent = k == 0 ? programmed_extent(f, before_areas, areas, ops[k]) : ops[k].len;
    for (uint32_t pm : tftest::every_tear(ops[k].len)) {
      if (nor::NorFlash::torn_landed(ops[k].len, pm) < extent || k != 0) {
        cuts.push_back({CutMode::Torn, pm});
      } else {
        ++counts.cut_points;
        ++counts.torn;
        ++counts.same_as_whole_erase;
      }
    }
    Bytes previous_state;
    for (const Cut& c : cuts) {
      restore();
      const uint32_t fired = f.cuts_fired();
      f.cut_power_at(k, c.mode, c.per_mille);
      EXPECT_EQ(store(f), Status::PowerLost);
      ASSERT_EQ(f.cuts_fired(), fired + 1) << what << ": the armed cut did not fire";
      f.power_on();
      // The write landed whole when its range holds the clean store's bytes (all of it landed, or all but a
      // last byte whose half-programmed bits happen to be all it needed).
      const bool whole_write = k == 1 && written(f, ops[k], after_raw(ops[k].area));
      ++counts.cut_points;
      counts.torn += c.mode == CutMode::Torn ? 1 : 0;
      // A tear that leaves the same bytes as the previous one (it landed only bytes the flash already held)
      // is the same case: checked once.
      const Bytes& now = f.raw(ops[k].area);
      Bytes state(now.begin() + ops[k].offset, now.begin() + ops[k].offset + ops[k].len);
      if (c.mode == CutMode::Torn && state == previous_state) {
        ++counts.same_as_previous_tear;
        continue;
      }
      previous_state = std::move(state);
      ++counts.states_checked;
      const Bytes got = load(f);
      ASSERT_EQ(got, whole_write ? after : before)
          << what << ", " << cfg.name() << ": op " << k << " mode " << static_cast<int>(c.mode) << " torn "
          << c.per_mille << "/1000";
      if (!whole_write) {  // the same store again, from what the cut left
        ASSERT_EQ(store(f), Status::Ok) << what << " after a cut at op " << k;
        ASSERT_EQ(load(f), after) << what << " after a cut at op " << k;
      }
    }
  }
  size_t i = 0;
  for (FlashArea a : areas) f.raw(a) = after_areas[i++];
}

void print_counts(const char* what, const Counts& c, size_t configs) {
  std::printf("[tears] %s: %u cut points of its erase and write (%u torn: every length the NOR model expresses) "
              "on %zu flash configurations; %u distinct flash states loaded and stored again, %u erase tears past "
              "the last programmed byte (the whole erase's state), %u tears leaving the previous tear's bytes\n",
              what, c.cut_points, c.torn, configs, c.states_checked, c.same_as_whole_erase, c.same_as_previous_tear);
}

ImageDescriptor image(uint8_t fill, uint32_t len, uint32_t counter) {
  ImageDescriptor d;
  d.total_len = len;
  d.security_counter = counter;
  std::memset(d.prefix_sha256, fill, sizeof d.prefix_sha256);
  return d;
}

Bytes load_metadata(FlashEmulator& f) {
  MetadataStore store(f);
  MetadataRecord r;
  if (store.load(r) != Status::Ok) return {};
  r.seq = 0;
  Bytes out(kMetadataRecordLen);
  encode_metadata(r, out.data());
  return out;
}

Bytes load_progress(FlashEmulator& f) {
  ProgressStore store(f);
  ProgressRecord r;
  if (store.load(r) != Status::Ok) return {};
  r.seq = 0;
  Bytes out(kProgressRecordLen);
  encode_progress(r, out.data());
  return out;
}

// Two banks of one sector (unused here), one sector per metadata copy, and a Scratch area with room for two
// progress-record copies.
FlashLayout layout_for(const FlashConfig& c) {
  const uint32_t copy_sectors = (static_cast<uint32_t>(kProgressRecordLen) + 16 + c.sector_size - 1) / c.sector_size;
  return FlashLayout::dual_bank(c.sector_size, 1, c.write_align, c.erased, 2 * copy_sectors);
}

}  // namespace

TEST(RecordTears, EveryCutOfEveryBootMetadataStoreOnEveryConfiguration) {
  Counts counts;
  const auto configs = tftest::all_flash_configs();
  for (const FlashConfig& cfg : configs) {
    FlashEmulator f(layout_for(cfg));
    BootMetadata meta(f);
    const std::initializer_list<FlashArea> areas = {FlashArea::Meta0, FlashArea::Meta1};
    auto count_trial_boot = [](FlashEmulator& fl) {  // the record select() stores before a trial image runs
      MetadataStore store(fl);
      MetadataRecord r;
      Status s = store.load(r);
      if (s != Status::Ok) return s;
      r.boot_attempts = static_cast<uint8_t>(r.boot_attempts + 1);
      return store.store(r);
    };
    const struct {
      const char* what;
      Store store;
      bool swept;  // false: done without cuts (a second trial, for the revert)
    } steps[] = {
        {"provision", [&](FlashEmulator&) { return meta.provision(0, image(0xA1, 9000, 1)); }, true},
        {"install trial", [&](FlashEmulator&) { return meta.install_trial(1, image(0xB2, 12000, 2)); }, true},
        {"count a trial boot", count_trial_boot, true},
        {"confirm", [&](FlashEmulator&) { return meta.confirm(); }, true},
        {"install trial", [&](FlashEmulator&) { return meta.install_trial(0, image(0xC3, 7000, 3)); }, false},
        {"revert", [&](FlashEmulator&) { return meta.revert(); }, true},
    };
    for (const auto& step : steps) {
      if (!step.swept) {
        ASSERT_EQ(step.store(f), Status::Ok);
        continue;
      }
      sweep_store(f, areas, step.store, load_metadata, step.what, cfg, counts);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  print_counts("boot metadata (provision, install trial, trial boot count, confirm, revert)", counts, configs.size());
}

TEST(RecordTears, EveryCutOfEveryProgressRecordStoreOnEveryConfiguration) {
  Counts counts;
  const auto configs = tftest::all_flash_configs();
  for (const FlashConfig& cfg : configs) {
    FlashEmulator f(layout_for(cfg));
    ProgressStore progress(f);
    ASSERT_TRUE(progress.available()) << cfg.name();
    ProgressRecord rec;
    auto store_with = [&](std::function<void(ProgressRecord&)> edit) {
      return [&rec, &progress, edit](FlashEmulator&) {
        ProgressRecord r = rec;
        edit(r);
        Status s = progress.store(r);
        if (s == Status::Ok) rec = r;
        return s;
      };
    };
    const struct {
      const char* what;
      Store store;
    } steps[] = {
        {"first record", store_with([](ProgressRecord& r) { r.epoch = 1; })},
        {"download checkpoint", store_with([](ProgressRecord& r) {
           r.epoch = 2;
           r.highest_desired_seq = 5;
           r.downloading = true;
           r.download_bank = 1;
           r.download_desired_seq = 5;
           std::memset(r.download_digest, 0x5A, 32);
           r.download_blocks = 9;
           r.bitmap[0] = 0x2D;
           r.bitmap[kBitmapBytes - 1] = 0x80;
         })},
        {"attempt failed", store_with([](ProgressRecord& r) {
           r.downloading = false;
           r.attempt = AttemptState::Failed;
           r.attempt_desired_seq = 5;
           std::memset(r.attempt_digest, 0x5A, 32);
           r.attempt_reason = 30;
           r.attempt_detail0 = 2;
         })},
    };
    for (const auto& step : steps) {
      sweep_store(f, {FlashArea::Scratch}, step.store, load_progress, step.what, cfg, counts);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  print_counts("progress record (first record, download checkpoint, failed attempt)", counts, configs.size());
}
