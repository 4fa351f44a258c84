"""The models a server holds: SavedModels found in run folders or in TF Serving's layout, loaded once.

Where they come from:
- `NAME=PATH`: PATH is a run folder (its `saved_model/` is served as version 1), a SavedModel folder
  (version 1), or a folder of numbered versions (`PATH/<version>/saved_model.pb`, each served);
- a base path in TF Serving's layout, `BASE/<name>/<version>/saved_model.pb`: every model and version;
- a runs folder, `RUNS/<name>/latest`: the newest run of each project that has an export.

A request without a version gets the highest one, as TF Serving does. A model that does not load stops the
server before it listens, naming the model and the path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.config import UserError
from shared.serving.errors import ServingError

SAVED_MODEL_FILE = "saved_model.pb"
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature: its name, TensorFlow dtype name (DT_FLOAT...) and shape.

    `shape` holds None for a dimension of any size; it is None itself when even the rank is unknown."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(object) if self.dtype == "DT_STRING" else np.dtype(NUMPY_DTYPES[self.dtype])

    def describe(self) -> str:
        dims = "?" if self.shape is None else ", ".join("-1" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {DTYPE_NAMES.get(self.dtype, self.dtype)}[{dims}]"


NUMPY_DTYPES = {
    "DT_FLOAT": np.float32,
    "DT_DOUBLE": np.float64,
    "DT_HALF": np.float16,
    "DT_INT8": np.int8,
    "DT_INT16": np.int16,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_UINT8": np.uint8,
    "DT_UINT16": np.uint16,
    "DT_UINT32": np.uint32,
    "DT_UINT64": np.uint64,
    "DT_BOOL": np.bool_,
}
DTYPE_NAMES = {"DT_STRING": "string", **{k: np.dtype(v).name for k, v in NUMPY_DTYPES.items()}}


@dataclass(frozen=True)
class Signature:
    """A servable signature: the function to call with named tensors and what it takes and gives."""

    name: str
    function: Callable[..., dict[str, Any]]
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]

    @property
    def batchable(self) -> bool:
        """Whether dimension 0 of every input and output is the example: only then can requests be
        joined into one batch and the answers split back (a signature of scalars, char_lstm's, cannot)."""
        tensors = [*self.inputs.values(), *self.outputs.values()]
        return all(t.shape is not None and len(t.shape) >= 1 and t.shape[0] is None for t in tensors)

    def describe(self) -> str:
        inputs = ", ".join(t.describe() for t in self.inputs.values())
        outputs = ", ".join(t.describe() for t in self.outputs.values())
        return f"{self.name}({inputs}) -> ({outputs})"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    path: Path
    signatures: dict[str, Signature]
    signature_defs: dict[str, Any]  # the SavedModel's SignatureDefs as protobuf JSON, for metadata replies
    loaded: Any  # the restored SavedModel object: it owns the variables and tables the functions use


class ModelRepository:
    """Every loaded model by name and version."""

    def __init__(self, versions: list[ModelVersion]):
        self.models: dict[str, dict[int, ModelVersion]] = {}
        for model in versions:
            self.models.setdefault(model.name, {})[model.version] = model

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        versions = self.models.get(name)
        if not versions:
            raise ServingError(404, f"Servable not found for request: Latest({name})")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise ServingError(
                404,
                f"Servable not found for request: Specific({name}, {version}); "
                f"{name} has version(s) {', '.join(map(str, sorted(versions)))}",
            )
        return versions[version]

    @classmethod
    def load(
        cls,
        models: list[str] = (),
        base_path: str | None = None,
        runs: str | None = None,
    ) -> ModelRepository:
        """Finds every source's SavedModels and loads them; a UserError names what did not load."""
        found: dict[str, dict[int, Path]] = {}
        for text in models:
            name, _, path = text.partition("=")
            if not name or not path:
                raise UserError(f"--model {text!r}: give NAME=PATH (e.g. mnist_cnn=runs/mnist_cnn/latest)")
            _add(found, name, versions_in(Path(path), name))
        if base_path is not None:
            for name, versions in layout_models(Path(base_path)).items():
                _add(found, name, versions)
        if runs is not None:
            for name, path in latest_runs(Path(runs)).items():
                _add(found, name, {1: path})
        if not found:
            raise UserError("no models to serve: give --model NAME=RUN_DIR, --model-base-path or --runs")
        loaded = []
        for name, versions in sorted(found.items()):
            for version, path in sorted(versions.items()):
                loaded.append(load_version(name, version, path))
        return cls(loaded)


def _add(found: dict[str, dict[int, Path]], name: str, versions: dict[int, Path]) -> None:
    if name in found:
        raise UserError(f"model {name!r} is given twice; give each model one source")
    found[name] = versions


def versions_in(path: Path, name: str) -> dict[int, Path]:
    """The versions `--model NAME=PATH` points at: a run folder, a SavedModel or a folder of versions."""
    if (path / "saved_model" / SAVED_MODEL_FILE).is_file():
        return {1: path / "saved_model"}
    if (path / SAVED_MODEL_FILE).is_file():
        return {1: path}
    numbered = _numbered(path)
    if numbered:
        return numbered
    if not path.exists():
        raise UserError(f"model {name}: {path} does not exist")
    raise UserError(
        f"model {name}: {path} holds no SavedModel (no {SAVED_MODEL_FILE}, saved_model/ or numbered "
        f"version folders); export the run first: python -m projects.<name> export {path}"
    )


def layout_models(base: Path) -> dict[str, dict[int, Path]]:
    """TF Serving's layout: BASE/<name>/<version>/saved_model.pb."""
    if not base.is_dir():
        raise UserError(f"--model-base-path {base} is not a folder")
    models = {child.name: _numbered(child) for child in sorted(base.iterdir()) if child.is_dir()}
    models = {name: versions for name, versions in models.items() if versions}
    if not models:
        raise UserError(f"--model-base-path {base} holds no <name>/<version>/{SAVED_MODEL_FILE}")
    return models


def latest_runs(runs: Path) -> dict[str, Path]:
    """RUNS/<name>/latest/saved_model of every project that has one."""
    if not runs.is_dir():
        raise UserError(f"--runs {runs} is not a folder; train a project first (make train-mnist_cnn)")
    found = {}
    for latest in sorted(runs.glob(f"*/latest/saved_model/{SAVED_MODEL_FILE}")):
        found[latest.parents[2].name] = latest.parent
    if not found:
        raise UserError(f"no run in {runs} has an export (<name>/latest/saved_model); train a project first")
    return found


def _numbered(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    return {
        int(child.name): child
        for child in folder.iterdir()
        if child.name.isdigit() and (child / SAVED_MODEL_FILE).is_file()
    }


def load_version(name: str, version: int, path: Path) -> ModelVersion:
    """Loads one SavedModel; a UserError naming the model and the path when it cannot be loaded."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        signature_defs = read_signature_defs(path)
    except Exception as e:  # a corrupt or foreign file: TensorFlow raises many kinds
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"model {name} version {version}: cannot load the SavedModel at {path}: {reason}"
        ) from e
    signatures = {
        key: _signature(key, function, signature_defs[key])
        for key, function in loaded.signatures.items()
        if key in signature_defs
    }
    if not signatures:
        raise UserError(
            f"model {name} version {version}: the SavedModel at {path} has no signatures to serve"
        )
    return ModelVersion(name, version, path, signatures, signature_defs, loaded)


def read_signature_defs(path: Path) -> dict[str, Any]:
    """The SignatureDefs of the SavedModel's first MetaGraph, as protobuf JSON (TF Serving's metadata)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / SAVED_MODEL_FILE).read_bytes())
    signature_defs = saved_model.meta_graphs[0].signature_def
    return {
        key: json_format.MessageToDict(
            value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        for key, value in signature_defs.items()
    }


def _signature(name: str, function, signature_def: dict[str, Any]) -> Signature:
    def infos(tensors: dict[str, Any]) -> dict[str, TensorInfo]:
        return {key: _tensor_info(key, value) for key, value in sorted(tensors.items())}

    return Signature(name, function, infos(signature_def.get("inputs", {})), infos(signature_def["outputs"]))


def _tensor_info(name: str, tensor: dict[str, Any]) -> TensorInfo:
    shape_proto = tensor.get("tensor_shape", {})
    if shape_proto.get("unknown_rank"):
        shape = None
    else:
        shape = tuple(
            None if int(d.get("size", 0)) < 0 else int(d.get("size", 0)) for d in shape_proto.get("dim", [])
        )
    return TensorInfo(name, tensor["dtype"], shape)
