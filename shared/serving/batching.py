"""Server-side batching: concurrent requests to one signature run as one call, and each gets its own rows.

A request waits in a bounded queue. When the model is free, the batcher takes the oldest request and every
queued request whose examples have the same shapes and dtypes, up to `max_size` examples, waiting at most
`timeout` for more to arrive; their inputs are joined along dimension 0, the signature runs once, and the
outputs are split back at the same offsets. A full queue refuses the request with 429 (RESOURCE_EXHAUSTED:
retry later; TF Serving's batcher answers 503 here). When a joined call fails (a check inside the model
refused one request's values), the batch is split in halves and each half run again, down to the request at
fault, which alone gets the error. Nothing outside this module knows whether a request was batched.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from shared.serving.errors import ServingError

Arrays = dict[str, np.ndarray]


@dataclass
class _Request:
    inputs: Arrays
    size: int  # examples
    shape_key: tuple  # per-example shapes and dtypes: only requests with equal keys share a batch
    answer: asyncio.Future


class Batcher:
    """Joins requests for one signature. `run` calls the model (in a worker thread) on joined inputs."""

    def __init__(
        self,
        name: str,
        run: Callable[[Arrays], Awaitable[Arrays]],
        max_size: int,
        timeout: float,
        max_queue: int,
        on_batch: Callable[[int], None] = lambda size: None,
    ):
        self.name, self.run, self.on_batch = name, run, on_batch
        self.max_size, self.timeout, self.max_queue = max_size, timeout, max_queue
        self._queue: deque[_Request] = deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve(), name=f"batcher {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for request in self._queue:
            if not request.answer.done():
                request.answer.set_exception(ServingError(503, "the server is shutting down"))

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, inputs: Arrays) -> asyncio.Future:
        """Queues one request; its future gets that request's outputs."""
        if len(self._queue) >= self.max_queue:  # requests whose clients gave up do not count
            self._queue = deque(r for r in self._queue if not r.answer.done())
        if len(self._queue) >= self.max_queue:
            raise ServingError(
                429, f"{self.name}: the batch queue is full ({self.max_queue} requests waiting); retry later"
            )
        size = len(next(iter(inputs.values())))
        key = tuple((name, a.shape[1:], a.dtype.str) for name, a in sorted(inputs.items()))
        request = _Request(inputs, size, key, asyncio.get_running_loop().create_future())
        self._queue.append(request)
        self._arrived.set()
        return request.answer

    async def _serve(self) -> None:
        while True:
            batch = await self._next_batch()
            if batch:
                await self._run(batch)

    async def _next_batch(self) -> list[_Request]:
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        first = self._queue.popleft()
        if first.answer.done():  # its client gave up (deadline, disconnect) while it waited
            return []
        batch, examples = [first], first.size
        deadline = time.monotonic() + self.timeout
        while examples < self.max_size:
            examples += self._take_matching(first.shape_key, self.max_size - examples, batch)
            left = deadline - time.monotonic()
            if examples >= self.max_size or left <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                examples += self._take_matching(first.shape_key, self.max_size - examples, batch)
                break
        return batch

    def _take_matching(self, key: tuple, room: int, batch: list[_Request]) -> int:
        """Moves queued requests with this shape key into `batch` while they fit; returns examples moved."""
        taken, kept = 0, deque()
        while self._queue:
            request = self._queue.popleft()
            if request.answer.done():
                continue
            if request.shape_key == key and request.size <= room - taken:
                batch.append(request)
                taken += request.size
            else:
                kept.append(request)
        self._queue.extendleft(reversed(kept))
        return taken

    async def _run(self, batch: list[_Request]) -> None:
        batch = [r for r in batch if not r.answer.done()]  # a client may give up while its batch waits
        if not batch:
            return
        try:
            joined = {name: np.concatenate([r.inputs[name] for r in batch]) for name in batch[0].inputs}
            self.on_batch(sum(r.size for r in batch))
            outputs = await self.run(joined)
        except Exception as e:
            if len(batch) == 1:
                if not batch[0].answer.done():
                    batch[0].answer.set_exception(e)
            else:  # one request's values (a check inside the model) must not fail the others
                half = len(batch) // 2
                await self._run(batch[:half])
                await self._run(batch[half:])
            return
        offset = 0
        for request in batch:
            if not request.answer.done():
                request.answer.set_result(
                    {name: value[offset : offset + request.size] for name, value in outputs.items()}
                )
            offset += request.size
