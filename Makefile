# tinyfleet: `make demo` runs the main job, `make test` runs every test. Both install what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Debian packages the project builds and tests with (installed only when missing).
APT_PKGS := python3-venv python3-dev build-essential cmake git openssl mosquitto mosquitto-clients \
            mosquitto-dev libmosquitto-dev libssl-dev \
            libmbedtls-dev libgtest-dev clang-14 libclang-rt-14-dev \
            gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm \
            chromium chromium-driver redis-server iproute2
# Everything the package build (and its C++ module tinyfleet._agent) is made from: a change reinstalls it.
PKG_INPUTS := pyproject.toml CMakeLists.txt device/CMakeLists.txt src/tinyfleet/server/broker/plugin/tinyfleet_identity.c \
              $(shell find device/include device/src device/ports/host device/ports/nor device/python -type f 2>/dev/null)

# The dashboard's front-end libraries and the clustered broker's node program's packages (package.json, pinned
# by package-lock.json), from the npm registry.
UI_VENDOR := node_modules/.package-lock.json

.PHONY: help deps venv lint test test-python test-device test-targets device-fuzz footprint demo bench clean

help:
	@echo "make demo    install what is missing, then run the demo (a signed bundle through the model gate, then"
	@echo "             200 simulated devices: a staged rollout, a bad firmware halted at its canary, drift recalibrated)"
	@echo "make test    install what is missing, then lint and run every test (Python, C++, fuzzers)"
	@echo "make bench   run the benchmarks in bench/, results in bench/results/"
	@echo "make footprint  the agent's Cortex-M4 flash/RAM/stack footprint (also part of make bench)"

deps:
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "== installing Debian packages:" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	else echo "== Debian packages: all present"; fi

$(STAMP): $(PKG_INPUTS)
	@echo "== Python environment in $(VENV) (tinyfleet, editable, with dev tools)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

$(UI_VENDOR): package.json package-lock.json
	@echo "== dashboard front-end libraries and the clustered broker's packages (npm ci into node_modules/)"
	@command -v npm >/dev/null || { echo "npm not found: the dashboard and the clustered broker need Node.js 20 with npm"; exit 1; }
	@npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

venv: deps $(STAMP) $(UI_VENDOR)

lint: venv
	@echo "== ruff"
	@$(VENV)/bin/ruff check .
	@echo "== import floors (lint-imports: no module imports a floor above its own)"
	@$(VENV)/bin/lint-imports --no-cache

# Two pytest workers, a test file each at a time (module fixtures are built once). The schema fuzz runs on
# its own: under pytest-xdist schemathesis folds its cases into one item that runs none of them.
SCHEMA_FUZZ := tests/server/api/test_schema_fuzz.py
test-python: venv
	@echo "== pytest (2 workers)"
	@$(PY) -m pytest -q -n 2 --dist loadfile --durations=15 --ignore=$(SCHEMA_FUZZ)
	@echo "== pytest: the API's schema fuzz"
	@$(PY) -m pytest -q -p no:xdist $(SCHEMA_FUZZ)

test-device: deps
	@echo "== device agent: build and ctest"
	@cmake -S device -B build/device -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build/device -j2
	@ctest --test-dir build/device --output-on-failure
	@grep -h "cut points" build/device/Testing/Temporary/LastTest.log || true

test-targets: deps
	@echo "== device agent cross-built for Cortex-M4, tests under QEMU; MCU ports' host tests"
	@bash device/targets/run-qemu-tests.sh
	@bash device/targets/run-host-tests.sh

footprint: deps
	@bash device/targets/footprint.sh

device-fuzz: deps
	@echo "== device agent: libFuzzer"
	@bash device/fuzz/run.sh

test: lint test-python test-device test-targets device-fuzz

demo: venv
	@bash scripts/demo.sh

bench: venv footprint
	@mkdir -p bench/results
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf build demo-out .pytest_cache .ruff_cache
