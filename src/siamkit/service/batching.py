"""Dynamic batching: model inputs from concurrent requests, embedded in one model call.

Requests put `(x, modality)` on a bounded queue and wait on a future. One
worker thread takes the first waiting item, then gathers more until the
batch holds `max_batch` rows, or `max_wait_ms` have passed since that first
item, or no other request is on its way (none waiting, none inside
`expecting()` reading its files): a lone request does not wait at all. It
embeds each modality's rows in one call and hands every request its rows
back, so `n` concurrent calls of fixed cost `c` cost about one `c`;
`max_batch=1` turns it off. A full queue refuses new work (`Busy`) instead
of growing.

Example:

>>> batcher = Batcher(run.embed, max_batch=32, max_wait_ms=5)   # doctest: +SKIP
>>> z = batcher.submit(x, "a").result()                          # doctest: +SKIP
>>> batcher.close()                                              # doctest: +SKIP
"""

import concurrent.futures
import contextlib
import dataclasses
import queue
import threading
import time

import numpy as np

from ..errors import ConfigError, SiamkitError


_NOTHING = object()
_POLL_S = 0.0005  # how often a gathering worker looks again for requests on their way


class Busy(SiamkitError):
    """The batch queue is full: the service answers 503 with Retry-After."""


@dataclasses.dataclass
class _Item:
    x: np.ndarray
    modality: str
    future: concurrent.futures.Future


class Batcher:
    """Gathers embedding requests into batches for one worker thread.

    Args:
        embed: `embed(x, modality) -> z`, the one model call.
        max_batch: most rows per call (1: no batching); a larger request
            is embedded alone.
        max_wait_ms: how long the first request of a batch waits for others.
        queue_size: most requests waiting; beyond it `submit` raises `Busy`.
        on_batch: optional `on_batch(rows)` after each model call (metrics).
    """

    def __init__(self, embed, max_batch=32, max_wait_ms=5.0, queue_size=256, on_batch=None):
        if max_batch < 1 or queue_size < 1 or max_wait_ms < 0:
            raise ConfigError(
                f"max_batch and queue_size must be positive and max_wait_ms not negative, got "
                f"{max_batch}, {queue_size}, {max_wait_ms}"
            )
        self.embed, self.max_batch, self.max_wait = embed, int(max_batch), max_wait_ms / 1000
        self.on_batch = on_batch
        self._queue = queue.Queue(queue_size)
        self._held = _NOTHING  # an item taken that did not fit the last batch
        self._expected, self._expected_lock = 0, threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="siamkit-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self):
        """Requests waiting for the model."""
        return self._queue.qsize()

    @contextlib.contextmanager
    def expecting(self):
        """Announce a request that will `submit` soon: a batch being gathered waits for it (up to `max_wait_ms`)."""
        with self._expected_lock:
            self._expected += 1
        try:
            yield
        finally:
            with self._expected_lock:
                self._expected -= 1

    def submit(self, x, modality="a"):
        """A future of the embeddings of `x` (`(n, ...)` inputs of one tower)."""
        item = _Item(np.asarray(x, "float32"), modality, concurrent.futures.Future())
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise Busy(f"the service is busy ({self._queue.maxsize} requests waiting); retry in a moment") from None
        return item.future

    def close(self):
        """Stop the worker after the requests already queued."""
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _gather(self):
        """The next batch's items, or None on the stop signal."""
        first = self._queue.get() if self._held is _NOTHING else self._held
        self._held = _NOTHING
        if first is None:
            return None
        items, rows = [first], len(first.x)
        deadline = time.monotonic() + self.max_wait
        while rows < self.max_batch:
            remaining = deadline - time.monotonic()
            if self._queue.empty() and (remaining <= 0 or not self._expected):
                break  # the wait is over, or nobody else is on the way
            try:
                item = self._queue.get(timeout=min(remaining, _POLL_S)) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                continue
            if item is None or rows + len(item.x) > self.max_batch:
                self._held = item  # the stop signal, or the first item of the next batch
                break
            items.append(item)
            rows += len(item.x)
        return items

    def _loop(self):
        while (items := self._gather()) is not None:
            for modality in dict.fromkeys(item.modality for item in items):
                self._run([item for item in items if item.modality == modality], modality)

    def _run(self, group, modality):
        try:
            z = np.asarray(self.embed(np.concatenate([item.x for item in group]), modality))
        except BaseException as err:  # every waiting request learns of the failure, and the worker goes on
            for item in group:
                item.future.set_exception(err)
            return
        if self.on_batch is not None:
            self.on_batch(sum(len(item.x) for item in group))
        start = 0
        for item in group:
            item.future.set_result(z[start : start + len(item.x)])
            start += len(item.x)
