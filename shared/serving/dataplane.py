"""What a prediction is, whatever protocol asked for it: a place among the requests in flight, the body
within its limits, the inputs checked against the signature, image files checked, the signature run on the
model's own threads (or through a batcher) within the deadline. The protocol modules only turn JSON into
arrays and arrays into JSON.
"""

from __future__ import annotations

import asyncio
import io
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import numpy as np

from shared.serving.batching import Arrays, Batcher
from shared.serving.errors import ServingError, from_tensorflow
from shared.serving.json import read_body
from shared.serving.metrics import ServingMetrics
from shared.serving.repository import ModelRepository, ModelVersion, Signature
from shared.serving.tensors import check_shape


@dataclass(frozen=True)
class ServerSettings:
    """Every limit and switch of the server, with its default (the command line's flags)."""

    host: str = "127.0.0.1"
    port: int = 8501
    batch_max_size: int = 0  # examples per joined call; 0 turns batching off
    batch_timeout_ms: float = (
        0.0  # how long a batch waits for more once the model is free (0: takes what waits)
    )
    batch_max_queue: int = 64  # requests waiting per signature before 429 (below max_in_flight)
    max_in_flight: int = 128  # requests read, waiting or running at once before 503: bounds the bodies held
    max_body_bytes: int = 16 * 1024 * 1024  # 413 past this, before the body is read
    max_request_examples: int = 1024  # examples in one request before 400
    max_image_pixels: int = 40_000_000
    request_timeout_ms: float = 30_000  # 408 for a body slower than this, 504 for an answer
    inference_threads: int = os.cpu_count() or 2  # per model, so a slow model never holds up another
    cors_origins: tuple[str, ...] = ()
    drain_seconds: float = 30.0  # on SIGTERM / Ctrl-C, how long requests in flight may take to finish
    max_stream_steps: int = 10_000  # steps one :stream request may ask for
    pages_dir: str | None = None  # where project pages are: PAGES/<project>/page/ (None: projects/)


# bodies and replies larger than this are parsed and written in a worker thread: megabytes of JSON would
# hold up every other request on the event loop for a second
OFFLOAD_BYTES = 256 * 1024


class Slot:
    """One of the server's `max_in_flight` places: taken before a request's body is read, and given back
    when the request is answered, or later, when model work it started (past a 504) has ended."""

    def __init__(self, plane: DataPlane):
        self.plane, self.work, self.freed = plane, None, False
        plane.in_flight += 1
        plane.metrics.in_flight.inc()

    def hold(self, work: asyncio.Future) -> asyncio.Future:
        self.work = work
        return work

    def release(self) -> None:
        if self.work is not None and not self.work.done():
            self.work.add_done_callback(lambda _: self._free())
        else:
            self._free()

    def _free(self) -> None:
        if not self.freed:
            self.freed = True
            self.plane.in_flight -= 1
            self.plane.metrics.in_flight.dec()


class DataPlane:
    def __init__(self, repository: ModelRepository, settings: ServerSettings, metrics: ServingMetrics):
        self.repository, self.settings, self.metrics = repository, settings, metrics
        self.executors = {
            name: ThreadPoolExecutor(settings.inference_threads, thread_name_prefix=f"model-{name}")
            for name in repository.models
        }
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
            lambda inputs: self._call(model, signature, inputs),
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
        for executor in self.executors.values():
            executor.shutdown(wait=False, cancel_futures=True)

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

    @asynccontextmanager
    async def slot(self):
        """A place among `max_in_flight`, for the whole of one predict request; 503 when there is none."""
        if self.in_flight >= self.settings.max_in_flight:
            raise ServingError(
                503,
                f"the server is answering its limit of {self.settings.max_in_flight} requests; retry later",
            )
        slot = Slot(self)
        try:
            yield slot
        finally:
            slot.release()

    async def read_body(self, request) -> bytes:
        """The body, within the body limit (413) and the deadline (408: a client sending it too slowly)."""
        try:
            with anyio.fail_after(self.settings.request_timeout_ms / 1000):
                return await read_body(request, self.settings.max_body_bytes)
        except TimeoutError:
            raise ServingError(
                408, f"the request body did not arrive within {self.settings.request_timeout_ms:g} ms"
            ) from None

    @staticmethod
    async def offload(function, *args, size: int):
        """`function(*args)` in a worker thread when it handles more than OFFLOAD_BYTES, else right here."""
        if size <= OFFLOAD_BYTES:
            return function(*args)
        return await asyncio.to_thread(function, *args)

    async def predict(self, model: ModelVersion, signature: Signature, inputs: Arrays, slot: Slot) -> Arrays:
        """The signature's outputs for these inputs, or a ServingError that names what was wrong."""
        check_inputs(signature, inputs, self.settings.max_request_examples)
        try:  # a cancel scope, not asyncio.wait_for: no task to create for every request
            with anyio.fail_after(self.settings.request_timeout_ms / 1000):
                return await self._answer(model, signature, inputs, slot)
        except TimeoutError:
            raise ServingError(
                504, f"no answer within the deadline of {self.settings.request_timeout_ms:g} ms"
            ) from None

    async def _answer(self, model: ModelVersion, signature: Signature, inputs: Arrays, slot: Slot) -> Arrays:
        loop = asyncio.get_running_loop()
        executor = self.executors[model.name]
        images = image_inputs(signature, inputs)
        if images:  # decoding can take a while: inside the deadline, on the model's threads
            limit = self.settings.max_image_pixels
            await asyncio.shield(slot.hold(loop.run_in_executor(executor, check_images, images, limit)))
        batcher = self.batchers.get((model.name, model.version, signature.name))
        if batcher is None:
            self.metrics.batch_size.labels(model.name).observe(_examples(inputs))
            return await asyncio.shield(
                slot.hold(loop.run_in_executor(executor, run_signature, signature, inputs))
            )
        return await batcher.submit(inputs)  # cancelled at the deadline: the batcher then skips it

    async def _call(self, model: ModelVersion, signature: Signature, inputs: Arrays) -> Arrays:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executors[model.name], run_signature, signature, inputs)


def image_inputs(signature: Signature, inputs: Arrays) -> Arrays:
    """Text inputs whose name holds "image": encoded image files, checked before the model decodes them."""
    return {n: a for n, a in inputs.items() if signature.inputs[n].dtype == "DT_STRING" and "image" in n}


def check_inputs(signature: Signature, inputs: Arrays, max_examples: int) -> None:
    """The inputs' names, shapes and example counts against the signature's."""
    check_names(signature, inputs)
    for name, array in inputs.items():
        check_shape(array, signature.inputs[name])
        if array.size == 0:
            raise ServingError(
                400, f"input {name!r} holds no values (shape {list(array.shape)}); send at least one"
            )
    if signature.batchable:
        counts = {name: array.shape[0] for name, array in inputs.items()}
        if len(set(counts.values())) > 1:
            raise ServingError(
                400, f"the inputs hold different numbers of examples: {counts}; give each the same"
            )
        examples = max(counts.values(), default=0)
        if examples > max_examples:
            raise ServingError(
                400, f"a request holds at most {max_examples} examples; this one holds {examples}: split it"
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
