#!/usr/bin/env bash
# Builds the core for Cortex-M4 (device/cmake/arm-none-eabi.cmake) and runs its tests under QEMU
# (mps2-an386, semihosting), then the STM32L476 application image and its loop's tests under QEMU. Prints each
# test image's own lines and a closing "N passed, M failed";
# exits non-zero if a test fails, the build fails or QEMU does not finish.
# Usage: device/targets/run-qemu-tests.sh [build dir, default build/cortex-m]
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build/cortex-m}
mbedtls=$repo/build/third_party/mbedtls

for tool in arm-none-eabi-g++ qemu-system-arm cmake; do
  command -v "$tool" >/dev/null || { echo "run-qemu-tests: $tool not found (make deps installs it)" >&2; exit 2; }
done

bash "$repo/device/targets/fetch-mbedtls.sh" "$mbedtls"
cmake -S "$repo/device/targets/cortex-m" -B "$build" -DCMAKE_BUILD_TYPE=MinSizeRel \
  -DCMAKE_TOOLCHAIN_FILE="$repo/device/cmake/arm-none-eabi.cmake" -DTINYFLEET_MBEDTLS_DIR="$mbedtls" >/dev/null
cmake --build "$build" -j2 --target core_tests 2>&1 | { grep -vE '^\[ *[0-9]+%\]|Memory region|^ +(FLASH|RAM):' || true; }
test -f "$build/core_tests.elf" || { echo "run-qemu-tests: build failed" >&2; exit 2; }
# The TFLite Micro port compiled for Cortex-M4 against the stand-in TFLM headers (docs/ports.md): its own code.
cmake --build "$build" -j2 --target tflm_port_cm4 >/dev/null || { echo "run-qemu-tests: tflm port build failed" >&2; exit 2; }
find "$build/CMakeFiles/tflm_port_cm4.dir" -name '*.obj' | sort | xargs arm-none-eabi-size -t | tail -n1 \
  | awk '{print "cortex-m4: TFLite Micro port (device/ports/tflm, without TFLM):", $1, "B of code"}'

# The STM32L476 application image (device/apps/stm32l4), linked for its bank: built, not run (no STM32L4 in QEMU).
if ! cmake --build "$build" -j2 --target stm32l4_app > "$build/stm32l4_app.build.log" 2>&1; then
  cat "$build/stm32l4_app.build.log"
  echo "run-qemu-tests: stm32l4_app build failed" >&2
  exit 2
fi
arm-none-eabi-size -A "$build/stm32l4_app.elf" | awk '$1 ~ /^\.(isr_vector|text|data|bss|sram2)$/ {
  printf "cortex-m4: stm32l4_app.elf %s %d B at 0x%08x\n", $1, $2, $3 }'
# The bootloader's own rule (stm32l4::firmware_vector_table, compiled for the host) on the raw image, placed at
# the stm32l4 profile's firmware_offset; the image must be linked for the address that rule gives.
offset=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["stm32l4"]["firmware_offset"])' \
  "$repo/src/tinyfleet/bundles/data/hardware_profiles.toml")
arm-none-eabi-objcopy -O binary "$build/stm32l4_app.elf" "$build/stm32l4_app.bin"
${CXX:-g++} -std=c++17 -Wall -Wextra -Werror -I"$repo/device/include" -I"$repo/device/ports/stm32" \
  "$repo/device/targets/cortex-m/app/check_firmware_image.cpp" "$repo/device/ports/stm32/stm32l4_layout.cpp" \
  -o "$build/check_firmware_image"
check=$("$build/check_firmware_image" "$build/stm32l4_app.bin" "$offset") || { echo "run-qemu-tests: $check" >&2; exit 1; }
echo "cortex-m4: stm32l4_app.elf $check"
linked=$(arm-none-eabi-size -A "$build/stm32l4_app.elf" | awk '$1 == ".isr_vector" { printf "0x%08x", $3 }')
[[ "$check" == "vector table $linked,"* ]] || { echo "run-qemu-tests: stm32l4_app.elf is linked at $linked" >&2; exit 1; }
cmake --build "$build" -j2 --target stm32l4_app_tests >/dev/null || { echo "run-qemu-tests: stm32l4_app_tests build failed" >&2; exit 2; }

# Runs one test image under QEMU: prints its lines and "cortex-m4: N passed, M failed"; fails the script if a
# test fails or QEMU does not finish.
run_image() {
  local image=$1 log=$build/$1.log rc summary failed
  set +e
  timeout 300 qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel "$build/$image.elf" > "$log" 2>&1
  rc=$?
  set -e
  cat "$log"
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1 || true)
  if [[ $rc -eq 124 ]]; then
    echo "run-qemu-tests: $image: QEMU timed out after 300 s" >&2
    exit 1
  fi
  if [[ -z "$summary" ]]; then
    echo "run-qemu-tests: $image stopped without a summary (exit status $rc)" >&2
    exit 1
  fi
  failed=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$summary")
  echo "cortex-m4: $image: $summary"
  if [[ $rc -ne 0 || $failed -ne 0 ]]; then
    echo "run-qemu-tests: $image FAILED (QEMU exit status $rc)" >&2
    exit 1
  fi
}

run_image core_tests
run_image stm32l4_app_tests
