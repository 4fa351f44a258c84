"""Serving exports: a SavedModel with a named signature, checked by reloading it in a fresh process.

The project supplies the endpoint (raw inputs in, preprocessing inside, named outputs out); this module
tracks the model in a `keras.export.ExportArchive`, writes it, and compares the reloaded signature's answers
with the in-memory model's. Run as `python -m shared.export SAVED_MODEL INPUTS.npz OUTPUTS.npz` it is the
fresh process: it loads the SavedModel with TensorFlow alone and writes the signature's outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SIGNATURE = "serving_default"


def export_saved_model(
    layers: list, endpoint, path: Path, aliases: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """Writes the SavedModel; returns the endpoint's eager answers on the example inputs (the reference).

    `layers`: the model and whatever else the endpoint calls that holds state (a preprocessor's lookup
    tables); None entries are skipped. The input signature is a list of named TensorSpecs, one argument
    each, or one dict of them (one argument holding every named input).
    """
    import keras
    import tensorflow as tf

    serve, input_signature, examples = endpoint
    archive = keras.export.ExportArchive()
    for layer in layers:
        if layer is not None:
            archive.track(layer)
    for name in (SIGNATURE, *aliases):  # an alias names what the endpoint does (e.g. `generate`)
        archive.add_endpoint(name=name, fn=serve, input_signature=input_signature)
    archive.write_out(str(path), verbose=False)
    inputs = {name: tf.constant(value) for name, value in examples.items()}
    takes_dict = len(input_signature) == 1 and isinstance(input_signature[0], dict)
    reference = serve(inputs) if takes_dict else serve(**inputs)
    return {name: np.asarray(value) for name, value in reference.items()}


def check_in_fresh_process(
    path: Path,
    examples: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    atol: float | None = None,
    signature: str = SIGNATURE,
) -> dict[str, float]:
    """Reloads the SavedModel in a new Python process and compares every output with `reference`.

    Returns the largest absolute difference per output; raises AssertionError past `atol`: 1e-5 for
    float32 on CPU; 1e-3 on GPUs or under mixed precision, where kernels and rounding may differ
    from one process to the next.
    """
    if atol is None:
        import keras
        import tensorflow as tf

        float32 = keras.mixed_precision.global_policy().name == "float32"
        atol = 1e-5 if float32 and not tf.config.list_physical_devices("GPU") else 1e-3
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
        np.savez(inputs, **examples)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run(
            [sys.executable, "-m", "shared.export", str(path), str(inputs), str(outputs), signature],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if result.returncode != 0:
            raise RuntimeError(f"reloading {path} in a fresh process failed:\n{result.stderr[-3000:]}")
        with np.load(outputs) as loaded:
            served = {name: loaded[name] for name in loaded.files}
    differences = {}
    for name, expected in reference.items():
        if name not in served:
            raise AssertionError(f"the reloaded signature has no output {name!r} (it has {sorted(served)})")
        got = served[name]
        if got.shape != expected.shape:
            raise AssertionError(f"output {name!r}: shape {got.shape} after reload, {expected.shape} before")
        if expected.dtype.kind in "SUO":  # text: equal or not
            same = got.astype(bytes).tolist() == expected.astype(bytes).tolist()
            differences[name] = 0.0 if same else float("inf")
        else:
            differences[name] = float(
                np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)), initial=0)
            )
        if differences[name] > atol:
            raise AssertionError(
                f"output {name!r} differs by {differences[name]:.3g} after reload (atol {atol})"
            )
    return differences


def saved_model_of(run_dir: Path) -> Path:
    """A run's exported SavedModel folder; a run without one is a UserError that says how to make it."""
    from shared.config import UserError

    path = Path(run_dir) / "saved_model"
    if not (path / "saved_model.pb").is_file():
        raise UserError(f"{run_dir} has no saved_model; run `export {run_dir}` (or train it to the end)")
    return path


def serve_saved_model(
    path: Path, inputs: dict[str, np.ndarray], signature_name: str = SIGNATURE
) -> dict[str, np.ndarray]:
    """Calls one of the SavedModel's signatures (TensorFlow only, no Keras or project code)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures[signature_name]
    outputs = signature(**{name: tf.constant(value) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


def _main(argv: list[str]) -> int:
    saved_model, inputs_npz, outputs_npz, *signature = argv
    with np.load(inputs_npz) as f:
        inputs = {name: f[name] for name in f.files}
    outputs = {k: np.asarray(v) for k, v in serve_saved_model(Path(saved_model), inputs, *signature).items()}
    # a batch of text comes back as an object array of bytes, which .npz holds only pickled: store bytes
    np.savez(outputs_npz, **{k: v.astype(bytes) if v.dtype == object else v for k, v in outputs.items()})
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
