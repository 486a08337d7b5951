#!/usr/bin/env bash
# `make demo`: the life of one bundle, from a trained INT8 model to a signed, verified bundle a device accepts,
# and the bundles a device refuses; then a simulated fleet of 200 devices through a staged rollout, a bad
# firmware halted at its canary, and drift answered by recalibration. Everything it writes goes to demo-out/.
# The fleet-server's dashboard is at the address step 7 prints; DEMO_KEEP=1 keeps it running after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

OUT=demo-out
S=models/sample
HW=stm32l4
mkdir -p "$OUT"

prov() { python3 -c "import json,sys; print(json.load(open('$S/provenance.json'))[sys.argv[1]])" "$1"; }
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
refused() {  # run a command that must fail, and show its one-line reason
  local out
  if out=$("$@" 2>&1); then echo "UNEXPECTED: accepted"; echo "$out"; exit 1; fi
  echo "refused as expected -> $(grep -m1 'error:' <<<"$out" || tail -n1 <<<"$out")"
}

step "1. A signing key (ECDSA P-256), kept in $OUT/keys"
fleetctl keys init --dir "$OUT/keys"

step "2. The model gate: is the sample INT8 model safe to ship to $HW?"
fleetctl model validate "$S/vibration_int8.tflite" --hw "$HW" --val "$S/val.npz" --float "$S/vibration_float.tflite"

step "3. Build and sign the bundle (the gate runs again; it refuses to sign a failing model)"
# The firmware image is opaque to the bundle format; the demo ships a stand-in image.
python3 -c "import hashlib,sys; sys.stdout.buffer.write(b'tinyfleet demo firmware 2.3.1\n' + hashlib.shake_256(b'fw').digest(60000))" \
  > "$OUT/firmware-2.3.1.bin"
fleetctl bundle build --out "$OUT/vibration-1.0.0-$HW.tfb" --key "$OUT/keys/signing.key.pem" \
  --id "vibration-1.0.0-$HW" --hw "$HW" --counter 1 \
  --firmware "$OUT/firmware-2.3.1.bin" --firmware-version 2.3.1 \
  --model "$S/vibration_int8.tflite" --model-version 1.0.0 \
  --thresholds "$S/thresholds.json" --calibration "$S/calibration.json" \
  --val "$S/val.npz" --float "$S/vibration_float.tflite" \
  --fe-version "$(prov feature_extractor_version)" --dataset "$(prov dataset_digest)" \
  --training-run "$(prov training_run_id)" \
  --max-latency-ms 50 --peak-ram 65536 --min-battery 20 --env site:plant-a --env temp:warm \
  --expires-days 365 --report "$OUT/gate-report.json"

step "4. Inspect it: manifest, model contract, components"
fleetctl bundle inspect "$OUT/vibration-1.0.0-$HW.tfb"

step "5. Verify it as an $HW device would (signature, policy, every payload hash)"
fleetctl bundle verify "$OUT/vibration-1.0.0-$HW.tfb" --key "$OUT/keys/signing.pub.pem" --hw "$HW" --min-counter 0

step "6. What a device refuses"
echo -n "an esp32s3 device:         "; refused fleetctl bundle verify "$OUT/vibration-1.0.0-$HW.tfb" \
  --key "$OUT/keys/signing.pub.pem" --hw esp32s3
echo -n "a device already at 2:     "; refused fleetctl bundle verify "$OUT/vibration-1.0.0-$HW.tfb" \
  --key "$OUT/keys/signing.pub.pem" --hw "$HW" --min-counter 2
python3 - "$OUT/vibration-1.0.0-$HW.tfb" "$OUT/tampered.tfb" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[-10] ^= 0x01  # one bit in the last payload
open(sys.argv[2], "wb").write(data)
EOF
echo -n "one flipped payload bit:   "; refused fleetctl bundle verify "$OUT/tampered.tfb" --key "$OUT/keys/signing.pub.pem"
fleetctl keys init --dir "$OUT/keys" --name other >/dev/null
echo -n "signed by an unknown key:  "; refused fleetctl bundle verify "$OUT/vibration-1.0.0-$HW.tfb" \
  --key "$OUT/keys/other.pub.pem"
echo -n "a float model at signing:  "; refused fleetctl bundle build --out "$OUT/float.tfb" \
  --key "$OUT/keys/signing.key.pem" --id float-model --hw "$HW" --counter 1 \
  --firmware "$OUT/firmware-2.3.1.bin" --firmware-version 2.3.1 --model models/fixtures/float_io.tflite \
  --model-version 0.0.1 --thresholds "$S/thresholds.json" --calibration "$S/calibration.json" \
  --val "$S/val.npz" --fe-version vib-window-v1 --max-latency-ms 50 --peak-ram 65536

step "7. The fleet: fleet-server + Mosquitto + 200 simulated devices running the real C++ agent core"
fleet-sim demo --devices 200 --workdir "$OUT/fleet-sim"

step "Done"
echo "bundle:      $OUT/vibration-1.0.0-$HW.tfb"
echo "gate report: $OUT/gate-report.json"
echo "fleet run:   $OUT/fleet-sim (server data, logs)"
echo "dashboard:   the address step 7 printed (DEMO_KEEP=1 make demo keeps the server running to open it)"
echo "format spec: docs/bundle-format.md (verify it with openssl alone: see 'Verifying with openssl')"
