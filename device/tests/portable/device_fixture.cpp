#include "device_fixture.h"

#include <cstring>
#include <new>

#include "tinytest.h"
#include "vectors_data.h"

using namespace tinyfleet;

namespace tftest {
namespace {

uint8_t g_bank0[kMaxBankBytes], g_bank1[kMaxBankBytes];
uint8_t g_meta0[kMaxSectorBytes], g_meta1[kMaxSectorBytes], g_scratch[2 * kMaxSectorBytes];
alignas(ram::RamFlash) uint8_t g_flash_storage[sizeof(ram::RamFlash)];
Layout g_layout = {};
uint8_t g_saved_bank0[kMaxBankBytes], g_saved_bank1[kMaxBankBytes];
uint8_t g_saved_meta0[kMaxSectorBytes], g_saved_meta1[kMaxSectorBytes], g_saved_scratch[2 * kMaxSectorBytes];
host::MbedtlsCrypto g_crypto;
Image g_old, g_new, g_other;
bool g_images_ready = false;

const tfvec::Vector& vector(const char* file) {
  for (size_t i = 0; i < tfvec::kVectorCount; ++i)
    if (std::strcmp(tfvec::kVectors[i].file, file) == 0) return tfvec::kVectors[i];
  tt::log(file);
  tt::fatal("device_fixture: a vector is missing");
}

void load_images() {
  if (g_images_ready) return;
  const tfvec::Vector& a = vector("valid-stm32l4.tfb");
  const tfvec::Vector& b = vector("valid-device-scoped.tfb");
  const tfvec::Vector& c = vector("valid-esp32s3.tfb");
  if (make_image(a.data, a.len, g_crypto, g_old) != Status::Ok || make_image(b.data, b.len, g_crypto, g_new) != Status::Ok ||
      make_image(c.data, c.len, g_crypto, g_other) != Status::Ok) {
    tt::fatal("device_fixture: a valid vector does not parse");
  }
  g_images_ready = true;
}

ram::RamFlash& flash_over_arrays(const Layout& l) {
  const uint32_t bank = l.sector_size * l.bank_sectors;
  if (bank > kMaxBankBytes || l.sector_size > kMaxSectorBytes) {
    tt::fatal("device_fixture: layout too large");
  }
  g_layout = l;
  const ram::RamArea areas[kFlashAreaCount] = {
      {g_bank0, bank, l.sector_size},          {g_bank1, bank, l.sector_size},
      {g_meta0, l.sector_size, l.sector_size}, {g_meta1, l.sector_size, l.sector_size},
      {g_scratch, 2 * l.sector_size, l.sector_size},  // two progress-record copies
  };
  return *new (g_flash_storage) ram::RamFlash(areas, l.write_align, l.erased);
}

}  // namespace

ram::RamFlash& fresh_flash(const Layout& l) {
  ram::RamFlash& flash = flash_over_arrays(l);
  flash.erase_all();
  return flash;
}

void save_flash() {
  std::memcpy(g_saved_bank0, g_bank0, sizeof g_bank0);
  std::memcpy(g_saved_bank1, g_bank1, sizeof g_bank1);
  std::memcpy(g_saved_meta0, g_meta0, sizeof g_meta0);
  std::memcpy(g_saved_meta1, g_meta1, sizeof g_meta1);
  std::memcpy(g_saved_scratch, g_scratch, sizeof g_scratch);
}

ram::RamFlash& restored_flash() {
  std::memcpy(g_bank0, g_saved_bank0, sizeof g_bank0);
  std::memcpy(g_bank1, g_saved_bank1, sizeof g_bank1);
  std::memcpy(g_meta0, g_saved_meta0, sizeof g_meta0);
  std::memcpy(g_meta1, g_saved_meta1, sizeof g_meta1);
  std::memcpy(g_scratch, g_saved_scratch, sizeof g_scratch);
  return flash_over_arrays(g_layout);
}

host::MbedtlsCrypto& crypto() { return g_crypto; }

const Image& old_image() {
  load_images();
  return g_old;
}

const Image& new_image() {
  load_images();
  return g_new;
}

const Image& other_image() {
  load_images();
  return g_other;
}

}  // namespace tftest
