#include "device_fixture.h"

#include <cstring>
#include <new>

#include "semihost.h"
#include "vectors_data.h"

using namespace tinyfleet;

namespace tftarget {
namespace {

uint8_t g_bank0[kMaxBankBytes], g_bank1[kMaxBankBytes];
uint8_t g_meta0[kMaxSectorBytes], g_meta1[kMaxSectorBytes], g_scratch[2 * kMaxSectorBytes];
alignas(ram::RamFlash) uint8_t g_flash_storage[sizeof(ram::RamFlash)];
host::MbedtlsCrypto g_crypto;
Image g_old, g_new, g_other;
bool g_images_ready = false;

const tfvec::Vector& vector(const char* file) {
  for (size_t i = 0; i < tfvec::kVectorCount; ++i)
    if (std::strcmp(tfvec::kVectors[i].file, file) == 0) return tfvec::kVectors[i];
  semihost::write("device_fixture: vector missing: ");
  semihost::write(file);
  semihost::exit(0xF0);
}

void load_images() {
  if (g_images_ready) return;
  const tfvec::Vector& a = vector("valid-stm32l4.tfb");
  const tfvec::Vector& b = vector("valid-device-scoped.tfb");
  const tfvec::Vector& c = vector("valid-esp32s3.tfb");
  if (make_image(a.data, a.len, g_crypto, g_old) != Status::Ok || make_image(b.data, b.len, g_crypto, g_new) != Status::Ok ||
      make_image(c.data, c.len, g_crypto, g_other) != Status::Ok) {
    semihost::write("device_fixture: a valid vector does not parse\n");
    semihost::exit(0xF0);
  }
  g_images_ready = true;
}

}  // namespace

ram::RamFlash& fresh_flash(const Layout& l) {
  const uint32_t bank = l.sector_size * l.bank_sectors;
  if (bank > kMaxBankBytes || l.sector_size > kMaxSectorBytes) {
    semihost::write("device_fixture: layout too large\n");
    semihost::exit(0xF0);
  }
  const ram::RamArea areas[kFlashAreaCount] = {
      {g_bank0, bank, l.sector_size},          {g_bank1, bank, l.sector_size},
      {g_meta0, l.sector_size, l.sector_size}, {g_meta1, l.sector_size, l.sector_size},
      {g_scratch, 2 * l.sector_size, l.sector_size},  // two progress-record copies
  };
  auto* flash = new (g_flash_storage) ram::RamFlash(areas, l.write_align, l.erased);
  flash->erase_all();
  return *flash;
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

}  // namespace tftarget
