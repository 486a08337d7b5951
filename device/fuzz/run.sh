#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each on a copy of its committed corpus
# (device/fuzz/corpus/<name>/, or corpus/<name without fuzz_>/). The fuzzers run on two lanes at once (one
# per core): fuzz_agent, the slowest per input and the widest, has one lane to itself; the other targets
# share the second lane equally. Each lane runs for TINYFLEET_FUZZ_SECONDS (default 60 s). Exits non-zero on
# any crash, leak, timeout, sanitizer report or broken invariant; the reproducer is kept in
# build/device-fuzz/artifacts/.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${TINYFLEET_FUZZ_BUILD:-$ROOT/build/device-fuzz}
LANE=${TINYFLEET_FUZZ_SECONDS:-60}
CC_BIN=${TINYFLEET_FUZZ_CC:-clang-14}
CXX_BIN=${TINYFLEET_FUZZ_CXX:-clang++-14}

mkdir -p "$(dirname "$BUILD")"
cmake -S "$ROOT/device" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$CC_BIN" \
  -DCMAKE_CXX_COMPILER="$CXX_BIN" -DTINYFLEET_FUZZ=ON >"$BUILD.configure.log" 2>&1 ||
  { cat "$BUILD.configure.log"; exit 1; }

TARGETS=""
OTHERS=""
for src in "$ROOT"/device/fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  TARGETS="$TARGETS $name"
  [ "$name" = fuzz_agent ] || OTHERS="$OTHERS $name"
done
BUILT=$(date +%s)
# shellcheck disable=SC2086
cmake --build "$BUILD" -j2 --target $TARGETS
echo "== fuzz targets built in $(($(date +%s) - BUILT)) s"

# shellcheck disable=SC2086
set -- $OTHERS
PER=$((LANE / $#))
[ "$PER" -ge 1 ] || PER=1
mkdir -p "$BUILD/artifacts"

# fuzz NAME SECONDS: one fuzzer on a copy of its corpus; its log in $BUILD/NAME.log, its exit status in
# $BUILD/NAME.status.
fuzz() {
  name=$1
  work=$(mktemp -d)
  if [ -d "$ROOT/device/fuzz/corpus/$name" ]; then
    cp -R "$ROOT/device/fuzz/corpus/$name/." "$work/"
  elif [ -d "$ROOT/device/fuzz/corpus/${name#fuzz_}" ]; then
    cp -R "$ROOT/device/fuzz/corpus/${name#fuzz_}/." "$work/"
  fi
  echo "$(ls "$work" | wc -l)" >"$BUILD/$name.inputs"
  status=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$BUILD/$name" -max_total_time="$2" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$name-" "$work" >"$BUILD/$name.log" 2>&1 || status=$?
  echo "$status" >"$BUILD/$name.status"
  rm -rf "$work"
}

fuzz fuzz_agent "$LANE" &
AGENT=$!
for name in $OTHERS; do fuzz "$name" "$PER"; done
wait "$AGENT"

STATUS=0
for name in $TARGETS; do
  secs=$PER
  [ "$name" = fuzz_agent ] && secs=$LANE
  echo "== $name: ${secs}s, $(cat "$BUILD/$name.inputs") corpus inputs"
  if [ "$(cat "$BUILD/$name.status")" = 0 ]; then
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$BUILD/$name.log" | tr '\n' ' '
    grep -E "DONE " "$BUILD/$name.log" | sed 's/.*\(cov: [0-9]*\).*/\1/' | tr '\n' ' '
    echo
  else
    STATUS=1
    echo "FAIL: $name found a crash or sanitizer report or broke an invariant:"
    tail -40 "$BUILD/$name.log"
  fi
done
exit $STATUS
