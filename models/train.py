"""Maintainer tool: regenerate the committed sample models, validation set and gate fixtures.

    python3 -m venv .venv-train && .venv-train/bin/pip install 'tensorflow-cpu>=2.16,<3' numpy
    .venv-train/bin/python models/train.py            # writes models/sample, models/fixtures, models/SHA256SUMS

Needs TensorFlow (the `train` extra), so `make test` never runs it: the tests use the committed outputs and
check them against models/SHA256SUMS. Seeds are fixed; with the same TensorFlow build on the same CPU the
outputs repeat byte for byte (docs/models.md, "Reproducing"). Post-training quantization with a
representative set is used instead of quantization-aware training: the model gate's float_drop check shows
what INT8 costs (docs/models.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataset  # noqa: E402
import fixture_edit  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 1234
EPOCHS = 40
BATCH = 32
REPRESENTATIVE = 400
# Thresholds on the softmax output's int8 scale (scale 1/256, zero point -128): code = 256 * p - 128.
MIN_SCORE = {"normal": -64, "imbalance": 0, "misalignment": 0, "bearing": 0}
SATURATED_CONV = 2  # the third convolution: narrowing it costs no accuracy, so only saturation fails
SATURATION_SCALE_DIVISOR = 4.0
ARENA_LARGE_FILTERS = 256

keras = tf.keras
layers = tf.keras.layers


def build(batch_size: int | None, activation: str = "relu", wide: bool = False) -> keras.Model:
    """The sample classifier; `batch_size=1` for conversion (a dynamic batch pulls in SHAPE/PACK ops)."""
    inp = keras.Input(shape=(dataset.features.WINDOW, dataset.features.CHANNELS), batch_size=batch_size)
    if wide:  # the arena fixture: a stride-1 first layer of 256 filters keeps 248 x 256 activations live
        x = layers.Conv1D(ARENA_LARGE_FILTERS, 9, activation=activation)(inp)
    else:
        x = layers.Conv1D(8, 9, strides=2, activation=activation)(inp)
    x = layers.Conv1D(16, 5, strides=2, activation=activation)(x)
    x = layers.Conv1D(16, 5, strides=2, activation=activation)(x)
    x = layers.Conv1D(24, 3, strides=2, activation=activation)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(len(dataset.signals.FAULTS))(x)
    return keras.Model(inp, layers.Softmax()(x))


def as_float(inputs: np.ndarray) -> np.ndarray:
    """int8 feature codes to the real values the float model sees (input scale 1/128, zero point 0)."""
    return inputs.astype(np.float32) * np.float32(dataset.features.INPUT_SCALE)


def train(train_ds: dataset.Dataset, activation: str = "relu", wide: bool = False) -> keras.Model:
    keras.utils.set_random_seed(SEED)
    model = build(None, activation, wide)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(as_float(train_ds.inputs), train_ds.labels, epochs=EPOCHS, batch_size=BATCH, shuffle=True, verbose=0)
    fixed = build(1, activation, wide)
    fixed.set_weights(model.get_weights())
    return fixed


def representative(train_ds: dataset.Dataset) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Calibration windows: every cell in turn (window k is cell k mod 72, from repetitions spread over the
    set), plus the windows that reach both int8 limits, so the converter's input range is exactly
    [-128, 127] codes (scale 1/128, zero point 0)."""
    n_cells = len(dataset.cells())
    reps = len(train_ds) // n_cells
    idx = [n_cells * ((k // n_cells) * 7 % reps) + k % n_cells for k in range(REPRESENTATIVE)]
    lo = int(np.argmax(train_ds.inputs.min(axis=(1, 2)) == -128))
    hi = int(np.argmax(train_ds.inputs.max(axis=(1, 2)) == 127))
    chosen = [lo, hi, *idx]

    def gen() -> Iterator[list[np.ndarray]]:
        for i in chosen:
            yield [as_float(train_ds.inputs[i : i + 1])]

    return gen


def convert(model: keras.Model, rep: Callable | None, int8_io: bool = True) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if rep is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def tflite_accuracy(model: bytes, val: dataset.Dataset) -> float:
    """TensorFlow's own interpreter, for the log only: the model gate is the authority on figures."""
    it = tf.lite.Interpreter(model_content=model)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    hits = 0
    for x, y in zip(val.inputs, val.labels, strict=True):
        feed = x[None] if inp["dtype"] == np.int8 else as_float(x[None])
        it.set_tensor(inp["index"], feed)
        it.invoke()
        hits += int(np.argmax(it.get_tensor(out["index"])[0]) == y)
    return hits / len(val)


def check_input_quant(model: bytes) -> None:
    it = tf.lite.Interpreter(model_content=model)
    scale, zp = it.get_input_details()[0]["quantization"]
    if abs(scale - dataset.features.INPUT_SCALE) > 1e-9 or zp != dataset.features.INPUT_ZERO_POINT:
        raise SystemExit(f"input quantization is ({scale}, {zp}), not the feature extractor's (1/128, 0)")


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"  {path}  {len(data)} bytes")


def write_checksums(root: Path) -> None:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name in ("sample", "fixtures"))
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}" for p in files]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="models directory to write (default: this one)")
    args = ap.parse_args()
    tf.config.experimental.enable_op_determinism()
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    sample, fixtures = args.out / "sample", args.out / "fixtures"

    print("generating data")
    train_ds, val = dataset.training_set(), dataset.validation_set()
    rep = representative(train_ds)

    print("training the sample classifier")
    model = train(train_ds)
    float_model = convert(model, None)
    int8_model = convert(model, rep)
    check_input_quant(int8_model)
    print(f"  float accuracy {tflite_accuracy(float_model, val):.4f}, int8 {tflite_accuracy(int8_model, val):.4f}")
    write(sample / "vibration_float.tflite", float_model)
    write(sample / "vibration_int8.tflite", int8_model)
    dataset.save_validation_npz(val, sample / "val.npz")
    print(f"  {sample / 'val.npz'}")
    thresholds = {
        "classes": [{"label": f, "min_score": MIN_SCORE[f], "alarm": f != "normal"} for f in dataset.signals.FAULTS]
    }
    (sample / "thresholds.json").write_text(json.dumps(thresholds, indent=2) + "\n")
    (sample / "calibration.json").write_text(json.dumps(dataset.calibration_json(train_ds.calibrated), indent=2) + "\n")
    provenance = {
        "dataset_digest": dataset.digest(train_ds),
        "training_run_id": f"vibration-seed{SEED}-tf{tf.__version__}",
        "feature_extractor_version": dataset.features.VERSION,
    }
    (sample / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")

    print("fixtures")
    write(fixtures / "float_io.tflite", convert(model, rep, int8_io=False))
    write(
        fixtures / "saturating.tflite",
        fixture_edit.narrow_conv_range(int8_model, SATURATED_CONV, SATURATION_SCALE_DIVISOR),
    )
    wide = train(train_ds, wide=True)
    arena_large = convert(wide, rep)
    check_input_quant(arena_large)
    print(f"  arena_large int8 accuracy {tflite_accuracy(arena_large, val):.4f}")
    write(fixtures / "arena_large.tflite", arena_large)
    gelu = train(train_ds, activation="gelu")
    gelu_model = convert(gelu, rep)
    check_input_quant(gelu_model)
    print(f"  gelu int8 accuracy {tflite_accuracy(gelu_model, val):.4f}")
    write(fixtures / "unsupported_op.tflite", gelu_model)

    write_checksums(args.out)
    print(f"wrote {args.out / 'SHA256SUMS'}")


if __name__ == "__main__":
    main()
