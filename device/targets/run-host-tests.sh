#!/usr/bin/env bash
# Host tests of device/targets/host-tests, built with the host compiler: the ports' pure logic with
# GoogleTest (STM32L476 layout, write rules, watchdog arithmetic; ESP32-S3 otadata reconciliation; the
# RAM-backed flash port; the TFLite Micro inference port against stand-in TFLM headers) and the Cortex-M
# test program built natively (PlatformIO `native` source set).
# Usage: device/targets/run-host-tests.sh [build dir, default build/port-host-tests]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build/port-host-tests}
cmake -S "$repo/device/targets/host-tests" -B "$build" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j2 2>&1 | { grep -vE '^\[ *[0-9]+%\]' || true; }
ctest --test-dir "$build" --output-on-failure
