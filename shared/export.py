"""Serving exports: a SavedModel with a named signature, checked by reloading it in a fresh process.

The project supplies the endpoint (raw inputs in, preprocessing inside, named outputs out); this module
tracks the model in a `keras.export.ExportArchive`, writes it, and compares the reloaded signature's answers
with the in-memory model's. Run as `python -m shared.export SAVED_MODEL INPUTS.npz OUTPUTS.npz` it is the
fresh process: it loads the SavedModel with TensorFlow alone and writes the signature's outputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SIGNATURE = "serving_default"


def export_saved_model(
    layers: list, endpoint, path: Path, aliases: tuple[str, ...] = (), extra: dict | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Writes the SavedModel; returns each signature's eager answers on its example inputs (the reference),
    by signature name.

    `layers`: the model and whatever else the endpoint calls that holds state (a preprocessor's lookup
    tables); None entries are skipped. The input signature is a list of named TensorSpecs, one argument
    each, or one dict of them (one argument holding every named input). `extra`: more signatures by name,
    each an endpoint of its own.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    for layer in layers:
        if layer is not None:
            archive.track(layer)
    endpoints = {SIGNATURE: endpoint, **(extra or {})}
    for name in aliases:  # an alias names what the endpoint does (e.g. `generate`)
        endpoints[name] = endpoint
    for name, (serve, input_signature, _) in endpoints.items():
        archive.add_endpoint(name=name, fn=serve, input_signature=input_signature)
    archive.write_out(str(path), verbose=False)
    references = {}
    for name, (serve, input_signature, examples) in endpoints.items():
        inputs = {key: tf.constant(value) for key, value in examples.items()}
        takes_dict = len(input_signature) == 1 and isinstance(input_signature[0], dict)
        reference = serve(inputs) if takes_dict else serve(**inputs)
        references[name] = {key: np.asarray(value) for key, value in reference.items()}
    return references


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


def serving_version(serving_dir: Path, name: str, version: int | None = None) -> int:
    """The version `publish` will write: `version` if it is free, else the next number after the newest."""
    from shared.config import UserError

    model_dir = Path(serving_dir) / name
    existing = [int(p.name) for p in model_dir.iterdir() if p.name.isdigit()] if model_dir.is_dir() else []
    if version is None:
        return max(existing, default=0) + 1
    if version < 1:
        raise UserError(f"--version must be a positive whole number, not {version}")
    if version in existing:
        raise UserError(
            f"{model_dir / str(version)} exists; versions are never overwritten: pick another --version"
        )
    return version


def publish(saved_model: Path, serving_dir: Path, name: str, version: int) -> Path:
    """Copies a SavedModel into TF Serving's layout, `serving_dir/<name>/<version>/`, and lists every model
    of `serving_dir` in its `models.config`, so TF Serving (and `python -m shared.serving
    --model-base-path`) serve the folder as it is. The copy appears whole or not at all: TF Serving watches
    the folder and would load a half-written version."""
    model_dir = Path(serving_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{version}-", dir=model_dir)
    )  # not a number: TF Serving skips it
    try:
        shutil.copytree(saved_model, staging, dirs_exist_ok=True)
        metrics = Path(saved_model).parent / "metrics.json"
        if metrics.is_file():  # the run's measured result travels with it, for the server's index page
            (staging / "assets.extra").mkdir(exist_ok=True)
            shutil.copy(metrics, staging / "assets.extra" / "metrics.json")
        staging.rename(model_dir / str(version))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_models_config(Path(serving_dir))
    return model_dir / str(version)


MODEL_CONFIG = """  config {{
    name: '{name}'
    base_path: '{mount}/{name}'
    model_platform: 'tensorflow'
    model_version_policy {{ all {{}} }}
  }}
"""


def write_models_config(serving_dir: Path, mount: str = "/models") -> Path:
    """`models.config` (TF Serving's ModelServerConfig) naming every `<name>/<version>/` model in the folder,
    with base paths as the folder is mounted in the container (`-v "$PWD/serving:/models"`), every version
    served, as `python -m shared.serving --model-base-path` does."""
    names = sorted(
        child.name
        for child in serving_dir.iterdir()
        if child.is_dir()
        and any(v.name.isdigit() and (v / "saved_model.pb").is_file() for v in child.iterdir())
    )
    entries = "".join(MODEL_CONFIG.format(name=name, mount=mount) for name in names)
    path = serving_dir / "models.config"
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return path


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
