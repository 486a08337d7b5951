#!/usr/bin/env bash
# The footprint report of the device agent on Cortex-M4: builds the cross-build's footprint images
# (device/targets/cortex-m) and prints text/data/bss of the core and of core + crypto port, worst-case
# stack and the no-heap check, and the feature extractor's own figures with its instructions per window
# counted under QEMU (bench/footprint.py, bench/feature_instructions.py), writing
# bench/results/footprint.json.
# Usage: device/targets/footprint.sh [build dir, default build/cortex-m]
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build/cortex-m}
mbedtls=$repo/build/third_party/mbedtls

bash "$repo/device/targets/fetch-mbedtls.sh" "$mbedtls"
cmake -S "$repo/device/targets/cortex-m" -B "$build" -DCMAKE_BUILD_TYPE=MinSizeRel \
  -DCMAKE_TOOLCHAIN_FILE="$repo/device/cmake/arm-none-eabi.cmake" -DTINYFLEET_MBEDTLS_DIR="$mbedtls" >/dev/null
# A failed build must not leave the last build's images to be measured.
if ! cmake --build "$build" -j2 --target footprint_agent stm32l4_bootloader footprint_sizes feature_instructions 2>&1 \
  | { grep -vE '^\[ *[0-9]+%\]|Memory region|^ +(FLASH|RAM):' || true; }; then
  echo "footprint: build failed" >&2
  exit 2
fi
python3 "$repo/bench/footprint.py" "$build" --json "$repo/bench/results/footprint.json"
