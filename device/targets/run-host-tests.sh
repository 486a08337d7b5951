#!/usr/bin/env bash
# Host unit tests of the ports' pure logic (STM32L476 layout, write rules, watchdog arithmetic; the
# RAM-backed flash port): device/targets/host-tests, built with the host compiler and GoogleTest.
# Usage: device/targets/run-host-tests.sh [build dir, default build/port-host-tests]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build/port-host-tests}
cmake -S "$repo/device/targets/host-tests" -B "$build" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j2 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
ctest --test-dir "$build" --output-on-failure
