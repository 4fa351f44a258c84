"""What a prediction is, whatever protocol asked for it: check the inputs against the signature, check image
files, run the signature (in a worker thread, or through a batcher), within the deadline and the server's
limit of requests in flight. The protocol modules only turn JSON into arrays and arrays into JSON.
"""

from __future__ import annotations

import asyncio
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from shared.serving.batching import Arrays, Batcher
from shared.serving.errors import ServingError, from_tensorflow
from shared.serving.metrics import ServingMetrics
from shared.serving.repository import ModelRepository, ModelVersion, Signature
from shared.serving.tensors import check_shape


@dataclass(frozen=True)
class ServerSettings:
    """Every limit and switch of the server, with its default (the command line's flags)."""

    host: str = "127.0.0.1"
    port: int = 8501
    batch_max_size: int = 0  # examples per joined call; 0 turns batching off
    batch_timeout_ms: float = 1.0  # how long a batch waits for more requests once the model is free
    batch_max_queue: int = 128  # requests waiting per signature before 429 (below max_in_flight)
    max_in_flight: int = 256  # predict requests being answered at once before 503
    max_body_bytes: int = 16 * 1024 * 1024  # 413 past this, before the body is read
    max_image_pixels: int = 40_000_000
    request_timeout_ms: float = 30_000  # 504 past this
    inference_threads: int = os.cpu_count() or 2
    cors_origins: tuple[str, ...] = ()
    drain_seconds: float = 30.0  # on SIGTERM / Ctrl-C, how long requests in flight may take to finish


class DataPlane:
    def __init__(self, repository: ModelRepository, settings: ServerSettings, metrics: ServingMetrics):
        self.repository, self.settings, self.metrics = repository, settings, metrics
        self.executor = ThreadPoolExecutor(settings.inference_threads, thread_name_prefix="inference")
        self.batchers: dict[tuple[str, int, str], Batcher] = {}
        self.in_flight = 0

    async def start(self) -> None:
        """Starts a batcher for every signature that can be batched, when batching is on."""
        if self.settings.batch_max_size <= 0:
            return
        for versions in self.repository.models.values():
            for model in versions.values():
                for signature in model.signatures.values():
                    if signature.batchable:
                        self._add_batcher(model, signature)

    def _add_batcher(self, model: ModelVersion, signature: Signature) -> None:
        label = model.name
        batcher = Batcher(
            f"{model.name} version {model.version} {signature.name}",
            lambda inputs: self._call(signature, inputs),
            self.settings.batch_max_size,
            self.settings.batch_timeout_ms / 1000,
            self.settings.batch_max_queue,
            on_batch=lambda size: self.metrics.batch_size.labels(label).observe(size),
        )
        self.batchers[(model.name, model.version, signature.name)] = batcher
        self.metrics.queued.labels(label).set_function(
            lambda: sum(len(b) for key, b in self.batchers.items() if key[0] == label)
        )
        batcher.start()

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def model(self, name: str, version: int | None = None) -> ModelVersion:
        return self.repository.get(name, version)

    @staticmethod
    def signature(model: ModelVersion, name: object) -> Signature:
        if name is not None and not isinstance(name, str):
            raise ServingError(400, f"'signature_name' must be a string value, not {name!r}")
        name = name or "serving_default"
        if name not in model.signatures:
            raise ServingError(
                400,
                f'Serving signature name: "{name}" not found in signature def; '
                f"{model.name} has {', '.join(sorted(model.signatures))}",
            )
        return model.signatures[name]

    async def predict(self, model: ModelVersion, signature: Signature, inputs: Arrays) -> Arrays:
        """The signature's outputs for these inputs, or a ServingError that names what was wrong."""
        check_inputs(signature, inputs)
        if self.in_flight >= self.settings.max_in_flight:
            raise ServingError(
                503,
                f"the server is answering its limit of {self.settings.max_in_flight} requests; retry later",
            )
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            await self._check_images(signature, inputs)
            return await asyncio.wait_for(
                self._answer(model, signature, inputs), self.settings.request_timeout_ms / 1000
            )
        except TimeoutError:
            raise ServingError(
                504, f"no answer within the deadline of {self.settings.request_timeout_ms:g} ms"
            ) from None
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()

    async def _answer(self, model: ModelVersion, signature: Signature, inputs: Arrays) -> Arrays:
        batcher = self.batchers.get((model.name, model.version, signature.name))
        if batcher is None or _examples(inputs) == 0:
            self.metrics.batch_size.labels(model.name).observe(_examples(inputs))
            return await self._call(signature, inputs)
        return await batcher.submit(inputs)

    async def _call(self, signature: Signature, inputs: Arrays) -> Arrays:
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, run_signature, signature, inputs
        )

    async def _check_images(self, signature: Signature, inputs: Arrays) -> None:
        images = {
            name: a
            for name, a in inputs.items()
            if signature.inputs[name].dtype == "DT_STRING" and "image" in name
        }
        if images:
            limit = self.settings.max_image_pixels
            await asyncio.get_running_loop().run_in_executor(None, check_images, images, limit)


def check_inputs(signature: Signature, inputs: Arrays) -> None:
    """The inputs' names, shapes and example counts against the signature's."""
    check_names(signature, inputs)
    for name, array in inputs.items():
        check_shape(array, signature.inputs[name])
    if signature.batchable:
        counts = {name: array.shape[0] for name, array in inputs.items()}
        if len(set(counts.values())) > 1:
            raise ServingError(
                400, f"the inputs hold different numbers of examples: {counts}; give each the same"
            )


def check_names(signature: Signature, names) -> None:
    unknown = sorted(set(names) - set(signature.inputs))
    missing = sorted(set(signature.inputs) - set(names))
    if unknown or missing:
        problem = f"unknown input(s) {unknown}" if unknown else f"missing input(s) {missing}"
        raise ServingError(400, f"{problem}; signature {signature.describe()}")


def check_images(images: Arrays, max_pixels: int) -> None:
    """Every image file decodes, and none is larger than `max_pixels`, before the model sees it."""
    from PIL import Image

    for name, files in images.items():
        for index, data in enumerate(files.reshape(-1)):
            where = f"input {name!r}, example {index}"
            try:
                with Image.open(io.BytesIO(data)) as image:
                    width, height = image.size
                    if width * height > max_pixels:
                        raise ServingError(
                            400,
                            f"{where}: the image is {width}x{height}, {width * height / 1e6:.1f} megapixels; "
                            f"at most {max_pixels / 1e6:g} are accepted",
                        )
                    image.load()  # decodes it: a truncated or corrupt file fails here
            except (
                Image.DecompressionBombError
            ):  # Pillow's own limit, far above ours: refused before decoding
                raise ServingError(
                    400, f"{where}: the image is over {max_pixels / 1e6:g} megapixels"
                ) from None
            except (OSError, SyntaxError, ValueError) as e:  # what Pillow raises for files it cannot read
                raise ServingError(
                    400, f"{where}: not a readable image file (JPEG, PNG, GIF or BMP): {e}"
                ) from None


def run_signature(signature: Signature, inputs: Arrays) -> Arrays:
    """Calls the signature (in a worker thread); TensorFlow's errors become ServingErrors."""
    import tensorflow as tf

    try:
        outputs = signature.function(**{name: tf.constant(value) for name, value in inputs.items()})
    except tf.errors.OpError as e:
        raise from_tensorflow(e) from None
    return {name: _array(value.numpy()) for name, value in outputs.items()}


def _array(value) -> np.ndarray:
    """A tensor's value as an array: a scalar string comes out of `.numpy()` as bare bytes."""
    return (
        value
        if isinstance(value, np.ndarray)
        else np.array(value, dtype=object if isinstance(value, bytes) else None)
    )


def _examples(inputs: Arrays) -> int:
    first = next(iter(inputs.values()), np.zeros(0))
    return int(first.shape[0]) if first.ndim else 1
