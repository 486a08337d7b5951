// The running bundle's table, as the agent finds it at boot in the running bank (which boot selection
// verified and which is not written while it runs): where each component lies, and where its health vectors
// lie. An update is compared with it (unchanged components are copied from here) and the trial health
// check runs from it. Only offsets and lengths are kept, not a whole BundleInfo: a component's SHA-256 is
// read back from the bank's table when it is asked for.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/bundle_parser.h"
#include "tinyfleet/health.h"
#include "tinyfleet/metadata.h"
#include "tinyfleet/ports.h"

namespace tinyfleet {

class RunningBundle {
 public:
  // Reads and parses the prefix of `bank` into `table` through `scratch` (scratch_len bytes) and keeps what
  // it needs if the prefix's digest is `image`'s (the one the metadata names); false (nothing known)
  // otherwise. `table` stays parsed for the caller.
  bool load(Flash& flash, Crypto& crypto, uint8_t bank, const ImageDescriptor& image, uint8_t* scratch,
            size_t scratch_len, BundleInfo& table);
  // Component `type` of the table `load` parsed, read from `bank` into out[cap]: its length, or 0 if it is
  // absent, larger than cap or unread.
  static size_t read_component(Flash& flash, uint8_t bank, const BundleInfo& table, ComponentType type,
                               uint8_t* out, size_t cap);

  bool known() const { return known_; }
  uint8_t count() const { return count_; }  // 0 unless known
  uint32_t offset(uint8_t i) const { return components_[i].offset; }
  uint32_t length(uint8_t i) const { return components_[i].length; }
  // Component i's SHA-256, from the bank's table.
  bool component_sha256(Flash& flash, uint8_t bank, uint8_t i, uint8_t out[32]) const;
  const HealthContract& health() const { return health_; }

 private:
  struct Component {  // read only below count_
    uint32_t offset;
    uint32_t length;
  };
  Component components_[TINYFLEET_MAX_COMPONENTS];
  uint32_t table_ = 0;  // offset of the bank's component table
  uint8_t count_ = 0;
  HealthContract health_;
  bool known_ = false;
};

}  // namespace tinyfleet
