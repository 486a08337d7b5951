#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each on a copy of its committed corpus
# (device/fuzz/corpus/<name>/). Total fuzzing time: TINYFLEET_FUZZ_SECONDS (default 66 s), split across the
# targets. Exits non-zero on any crash, leak, timeout or sanitizer report; the reproducer is kept in
# build/device-fuzz/artifacts/.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${TINYFLEET_FUZZ_BUILD:-$ROOT/build/device-fuzz}
TOTAL=${TINYFLEET_FUZZ_SECONDS:-66}
CC_BIN=${TINYFLEET_FUZZ_CC:-clang-14}
CXX_BIN=${TINYFLEET_FUZZ_CXX:-clang++-14}

mkdir -p "$(dirname "$BUILD")"
cmake -S "$ROOT/device" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$CC_BIN" \
  -DCMAKE_CXX_COMPILER="$CXX_BIN" -DTINYFLEET_FUZZ=ON >"$BUILD.configure.log" 2>&1 ||
  { cat "$BUILD.configure.log"; exit 1; }

TARGETS=""
for src in "$ROOT"/device/fuzz/fuzz_*.cpp; do
  TARGETS="$TARGETS $(basename "$src" .cpp)"
done
# shellcheck disable=SC2086
cmake --build "$BUILD" -j2 --target $TARGETS

set -- $TARGETS
COUNT=$#
PER=$((TOTAL / COUNT))
[ "$PER" -ge 1 ] || PER=1
mkdir -p "$BUILD/artifacts"
STATUS=0
for name in $TARGETS; do
  work=$(mktemp -d)
  if [ -d "$ROOT/device/fuzz/corpus/$name" ]; then
    cp -R "$ROOT/device/fuzz/corpus/$name/." "$work/"
  elif [ -d "$ROOT/device/fuzz/corpus/${name#fuzz_}" ]; then
    cp -R "$ROOT/device/fuzz/corpus/${name#fuzz_}/." "$work/"
  fi
  echo "== $name: ${PER}s, $(ls "$work" | wc -l) corpus inputs"
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$BUILD/$name" -max_total_time="$PER" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$name-" "$work" >"$BUILD/$name.log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$BUILD/$name.log" | tr '\n' ' '
    echo
  else
    STATUS=1
    echo "FAIL: $name found a crash or sanitizer report:"
    tail -40 "$BUILD/$name.log"
  fi
  rm -rf "$work"
done
exit $STATUS
