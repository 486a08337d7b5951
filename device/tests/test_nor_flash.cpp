// The NOR model (ports/nor/nor_flash.h), the one set of flash rules every test and simulation flash uses:
// FlashEmulator and the RAM port keep their bytes in memory, SparseFlash (fleet-sim, through
// tinyfleet._agent) in sectors allocated on first write. Every rule is checked over both storages.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "flash_emulator.h"
#include "sparse_flash.h"

using namespace tinyfleet;
using host::FlashLayout;
using nor::CutMode;
using nor::NorFlash;

namespace {

enum class Storage { Memory, Sparse };

// One flash of either storage, behind the model's interface.
struct AnyFlash {
  std::unique_ptr<host::FlashEmulator> memory;
  std::unique_ptr<host::SparseFlash> sparse;
  NorFlash* operator->() { return memory ? static_cast<NorFlash*>(memory.get()) : sparse.get(); }
  NorFlash& operator*() { return *operator->(); }
};

AnyFlash make(Storage kind, const FlashLayout& layout) {
  AnyFlash f;
  if (kind == Storage::Memory) {
    f.memory = std::make_unique<host::FlashEmulator>(layout);
  } else {
    f.sparse = std::make_unique<host::SparseFlash>(layout);
  }
  return f;
}

std::vector<uint8_t> read(NorFlash& f, FlashArea area, uint32_t offset, size_t len) {
  std::vector<uint8_t> r(len);
  EXPECT_EQ(f.read(area, offset, r.data(), len), Status::Ok);
  return r;
}

class NorRules : public ::testing::TestWithParam<std::tuple<Storage, uint8_t>> {
 protected:
  AnyFlash flash(uint32_t sector, uint32_t bank_sectors, uint32_t align) {
    return make(std::get<0>(GetParam()), FlashLayout::dual_bank(sector, bank_sectors, align, erased()));
  }
  uint8_t erased() const { return std::get<1>(GetParam()); }
};

}  // namespace

TEST_P(NorRules, StartsErasedAndRefusesWritesToProgrammedBytes) {
  const uint8_t e = erased();
  auto f = flash(256, 4, 4);
  EXPECT_EQ(f->geometry(FlashArea::Bank0).size, 1024u);
  EXPECT_EQ(f->geometry(FlashArea::Bank0).erased_value, e);
  for (uint8_t b : read(*f, FlashArea::Bank1, 100, 8)) EXPECT_EQ(b, e);
  const uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_EQ(f->write(FlashArea::Bank1, 100, data, 8), Status::Ok);
  EXPECT_EQ(f->write(FlashArea::Bank1, 100, data, 4), Status::FlashNotErased);
  // Even rewriting the erased value over programmed bytes is refused; the content is unchanged.
  const uint8_t erased_bytes[4] = {e, e, e, e};
  EXPECT_EQ(f->write(FlashArea::Bank1, 104, erased_bytes, 4), Status::FlashNotErased);
  EXPECT_EQ(read(*f, FlashArea::Bank1, 100, 8), std::vector<uint8_t>(data, data + 8));
  ASSERT_EQ(f->erase(FlashArea::Bank1, 0, 256), Status::Ok);
  for (uint8_t b : read(*f, FlashArea::Bank1, 100, 8)) EXPECT_EQ(b, e);
  EXPECT_EQ(f->write(FlashArea::Bank1, 100, data, 8), Status::Ok);
}

TEST_P(NorRules, HonoursWriteGranularitySectorAlignmentAndBounds) {
  auto f = flash(512, 2, 8);
  const uint8_t d[16] = {};
  EXPECT_EQ(f->write(FlashArea::Bank0, 4, d, 8), Status::FlashMisaligned);
  EXPECT_EQ(f->write(FlashArea::Bank0, 8, d, 4), Status::FlashMisaligned);
  EXPECT_EQ(f->write(FlashArea::Bank0, 8, d, 16), Status::Ok);
  EXPECT_EQ(f->erase(FlashArea::Bank0, 256, 512), Status::FlashMisaligned);
  EXPECT_EQ(f->erase(FlashArea::Bank0, 0, 100), Status::FlashMisaligned);
  EXPECT_EQ(f->erase(FlashArea::Bank0, 512, 512), Status::Ok);
  EXPECT_EQ(f->write(FlashArea::Bank0, 1024, d, 8), Status::FlashError);  // past the end
  EXPECT_EQ(f->write(FlashArea::Bank0, 1020, d, 8), Status::FlashError);  // reaching past the end
  EXPECT_EQ(f->geometry(FlashArea::Bank1).write_align, 8u);
  EXPECT_EQ(f->op_count(), 2u);  // refused operations are not counted
}

TEST_P(NorRules, EachCutModeAndThePowerStaysOffUntilReboot) {
  const uint8_t e = erased();
  uint8_t data[16];
  for (int i = 0; i < 16; ++i) data[i] = static_cast<uint8_t>(0x10 + i);
  for (CutMode mode : {CutMode::Before, CutMode::Torn, CutMode::After}) {
    auto f = flash(256, 4, 8);
    f->cut_power_at(1, mode);
    EXPECT_EQ(f->write(FlashArea::Bank0, 0, data, 16), Status::Ok);         // op 0
    EXPECT_EQ(f->cuts_fired(), 0u);
    EXPECT_EQ(f->write(FlashArea::Bank1, 0, data, 16), Status::PowerLost);  // op 1: cut
    EXPECT_FALSE(f->powered());
    EXPECT_FALSE(f->armed());
    EXPECT_EQ(f->cuts_fired(), 1u);
    uint8_t back[16];
    EXPECT_EQ(f->read(FlashArea::Bank1, 0, back, 16), Status::PowerLost);
    EXPECT_EQ(f->write(FlashArea::Bank1, 64, data, 16), Status::PowerLost);
    f->power_on();
    ASSERT_EQ(f->read(FlashArea::Bank1, 0, back, 16), Status::Ok);
    if (mode == CutMode::Before) {
      for (uint8_t b : back) EXPECT_EQ(b, e);
    } else if (mode == CutMode::After) {
      EXPECT_EQ(std::memcmp(back, data, 16), 0);
    } else {
      EXPECT_EQ(std::memcmp(back, data, 8), 0);            // first half landed
      EXPECT_EQ(back[8], e ^ ((e ^ data[8]) & 0x0F));      // half the bits of the next byte
      EXPECT_NE(back[8], data[8]);
      EXPECT_NE(back[8], e);
      for (int i = 9; i < 16; ++i) EXPECT_EQ(back[i], e);
      EXPECT_EQ(f->write(FlashArea::Bank1, 0, data, 16), Status::FlashNotErased);
    }
    EXPECT_EQ(f->op_count(), 2u);
  }
}

TEST_P(NorRules, TornOperationsLandTheGivenFraction) {
  const uint8_t e = erased();
  const uint8_t other = static_cast<uint8_t>(~e);
  auto f = flash(256, 4, 1);
  std::vector<uint8_t> programmed(512, other);
  ASSERT_EQ(f->write(FlashArea::Bank0, 0, programmed.data(), 512), Status::Ok);
  f->cut_power_at(0, CutMode::Torn);  // half of two sectors: the first sector
  EXPECT_EQ(f->erase(FlashArea::Bank0, 0, 512), Status::PowerLost);
  f->power_on();
  auto r = read(*f, FlashArea::Bank0, 0, 512);
  EXPECT_EQ(r[0], e);
  EXPECT_EQ(r[255], e);
  EXPECT_EQ(r[256], other);  // the erase stopped half way
  f->cut_power_at(0, CutMode::Torn, 750);
  EXPECT_EQ(f->erase(FlashArea::Bank0, 256, 256), Status::PowerLost);
  f->power_on();
  r = read(*f, FlashArea::Bank0, 256, 256);
  EXPECT_EQ(r[191], e);
  EXPECT_EQ(r[192], other);
  f->cut_power_at(0, CutMode::After);
  EXPECT_EQ(f->erase(FlashArea::Bank0, 256, 256), Status::PowerLost);
  f->power_on();
  EXPECT_EQ(read(*f, FlashArea::Bank0, 256, 256), std::vector<uint8_t>(256, e));

  const uint8_t d[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  f->cut_power_at(0, CutMode::Torn, 300);  // 3 of 10 bytes, then a half-programmed one
  EXPECT_EQ(f->write(FlashArea::Bank1, 0, d, 10), Status::PowerLost);
  f->power_on();
  r = read(*f, FlashArea::Bank1, 0, 10);
  EXPECT_EQ(std::vector<uint8_t>(r.begin(), r.begin() + 3), std::vector<uint8_t>(d, d + 3));
  EXPECT_EQ(r[3], e ^ ((e ^ d[3]) & 0x0F));
  EXPECT_EQ(r[4], e);
  f->cut_power_at(0, CutMode::Torn, 1000);  // all of it lands
  EXPECT_EQ(f->write(FlashArea::Bank1, 16, d, 10), Status::PowerLost);
  f->power_on();
  EXPECT_EQ(read(*f, FlashArea::Bank1, 16, 10), std::vector<uint8_t>(d, d + 10));
}

TEST_P(NorRules, DisarmedCutsNeverFireAndBitFlipsStay) {
  auto f = flash(256, 2, 1);
  f->cut_power_at(0, CutMode::Before);
  EXPECT_TRUE(f->armed());
  f->disarm();
  const uint8_t d[4] = {1, 2, 3, 4};
  EXPECT_EQ(f->write(FlashArea::Bank0, 0, d, 4), Status::Ok);
  EXPECT_TRUE(f->powered());
  f->flip_bit(FlashArea::Bank0, 1, 3);
  EXPECT_EQ(read(*f, FlashArea::Bank0, 1, 1)[0], 2 ^ 8);
  f->flip_bit(FlashArea::Bank0, 1u << 20, 0);  // out of bounds: ignored
  EXPECT_EQ(f->cuts_fired(), 0u);
  f->erase_all();
  EXPECT_EQ(read(*f, FlashArea::Bank0, 0, 4), std::vector<uint8_t>(4, erased()));
}

INSTANTIATE_TEST_SUITE_P(StoragesAndErasedValues, NorRules,
                         ::testing::Combine(::testing::Values(Storage::Memory, Storage::Sparse),
                                            ::testing::Values(uint8_t{0xFF}, uint8_t{0x00})));

TEST(SparseFlash, AllocatesOnlySectorsThatHoldProgrammedBytes) {
  host::SparseFlash f(FlashLayout::dual_bank(4096, 8, 8, 0xFF, 2));
  EXPECT_EQ(f.bytes_used(), 0u);
  EXPECT_EQ(read(f, FlashArea::Bank1, 100, 16), std::vector<uint8_t>(16, 0xFF));
  const std::vector<uint8_t> a(16, 'A');
  ASSERT_EQ(f.write(FlashArea::Bank1, 4088, a.data(), 16), Status::Ok);  // spans two sectors
  EXPECT_EQ(read(f, FlashArea::Bank1, 4088, 16), a);
  EXPECT_EQ(f.bytes_used(), 2u * 4096);
  ASSERT_EQ(f.erase(FlashArea::Bank1, 0, 8192), Status::Ok);
  EXPECT_EQ(f.bytes_used(), 0u);
  EXPECT_EQ(f.geometry(FlashArea::Scratch).size, 2u * 4096);
}

TEST(SparseFlash, EqualSectorsAreHeldOnceAndCopiedOnWrite) {
  host::SectorPool& pool = host::SectorPool::instance();
  const size_t before = pool.sectors();
  const FlashLayout layout = FlashLayout::dual_bank(4096, 8, 8, 0xFF, 2);
  std::vector<uint8_t> image(3 * 4096 + 100);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7 + 3 + i / 4096);  // no two sectors alike
  {
    host::SparseFlash a(layout), b(layout);
    ASSERT_EQ(a.write(FlashArea::Bank0, 0, image.data(), image.size() - 4), Status::Ok);
    ASSERT_EQ(b.write(FlashArea::Bank1, 0, image.data(), image.size() - 4), Status::Ok);
    EXPECT_EQ(pool.sectors(), before + 4);  // both flashes hold the same four sectors once
    EXPECT_EQ(a.bytes_used(), 4u * 4096);
    const uint8_t last[8] = {0, 1, 2, 3, 4, 5, 6, 7};  // b's tail sector diverges: a copy, a's bytes stay
    ASSERT_EQ(b.write(FlashArea::Bank1, static_cast<uint32_t>(image.size() - 4), last, 8), Status::Ok);
    EXPECT_EQ(pool.sectors(), before + 5);
    EXPECT_EQ(read(a, FlashArea::Bank0, 3 * 4096 + 96, 8), std::vector<uint8_t>(8, 0xFF));
    EXPECT_EQ(read(b, FlashArea::Bank1, 3 * 4096 + 96, 8), std::vector<uint8_t>(last, last + 8));
    ASSERT_EQ(a.erase(FlashArea::Bank0, 0, 4096), Status::Ok);  // still held by b
    EXPECT_EQ(read(b, FlashArea::Bank1, 0, 16), std::vector<uint8_t>(image.begin(), image.begin() + 16));
    EXPECT_EQ(pool.sectors(), before + 5);
  }
  EXPECT_EQ(pool.sectors(), before);  // the last holders are gone: so are their sectors
}
