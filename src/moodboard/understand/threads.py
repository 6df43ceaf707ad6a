"""Running an encoder's batches on torch's CPU threads, one call at a time.

Both encoders set torch's process-wide thread count for the length of a call and restore it
after, so calls hold :data:`ENCODER_LOCK` and never interleave.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_log = logging.getLogger(__name__)

#: Held while an encoder runs its model (torch's thread count is process-wide).
ENCODER_LOCK = threading.Lock()


@functools.cache
def cpu_bf16() -> bool:
    """Whether this CPU runs bfloat16 natively (oneDNN's bf16 kernels: AVX512-BW/VL/DQ,
    AVX-NE-CONVERT or AMX). Encoders asked for bf16 run in float32 where it does not: there
    oneDNN's bf16 convolutions refuse to run and bf16 matrix products are emulated, 6x slower
    than float32 (an AVX2-only AMD EPYC, 2026-12-07)."""
    import torch

    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - a torch without the probe
        native = False
    if not native:
        _log.info(
            "this CPU has no native bfloat16 (%s): encoders run in float32",
            torch.backends.cpu.get_cpu_capability(),
        )
    return native


def run_batches(
    batch: Callable[[int], None],
    starts: Sequence[int],
    threads: int | None,
    parallel: bool,
    name: str,
) -> None:
    """Call ``batch(start)`` for every start, on ``threads`` CPU threads.

    Parameters
    ----------
    batch
        Embeds the batch beginning at ``start`` (writes its own output).
    starts
        First row of each batch.
    threads
        CPU threads to use; None: torch's current setting. A single batch with ``threads``
        None runs at once without the lock (a server sets torch's threads once at start).
    parallel
        True runs one single-threaded batch per thread (best for small models on few
        cores); False runs batches one after another, each on all threads.
    name
        Thread name prefix.
    """
    if len(starts) == 1 and threads is None:  # one small batch (a query): no thread juggling,
        batch(starts[0])  # so concurrent requests run side by side on torch's current setting
        return
    import torch

    with ENCODER_LOCK:
        before = torch.get_num_threads()
        threads = threads or before
        workers = min(threads, len(starts)) if parallel else 1
        torch.set_num_threads(1 if workers > 1 else threads)  # new threads pick it up
        pool = ThreadPoolExecutor(workers, name) if workers > 1 else None
        try:  # one batch runs in this thread: a new thread would start its own OpenMP team
            list((map if pool is None else pool.map)(batch, starts))
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(before)


_POOLS: dict[tuple[str, int], ThreadPoolExecutor] = {}  # by (name, threads)
_POOLS_LOCK = threading.Lock()


def shared_pool(name: str, threads: int) -> ThreadPoolExecutor:
    """The process's long-lived pool of ``threads`` threads named ``name``, started on first
    use: a pool made per call starts its threads again each time, and a server's model work
    runs slower beside thread starts (``/visual-search`` decoding its upload's crops started
    two threads a request, about 37 a second under load, 2026-12-06)."""
    with _POOLS_LOCK:
        pool = _POOLS.get((name, threads))
        if pool is None:
            pool = _POOLS[name, threads] = ThreadPoolExecutor(threads, name)
        return pool


def side_by_side(batch: Callable[[int], None], starts: Sequence[int]) -> None:
    """Call ``batch(start)`` for every start at once, each on one core: the first on this
    thread, the others on long-lived side threads (a request's parts, e.g. finding a photo's
    objects while the photo is embedded).

    Threads made for one call start cold (p99 of a photo's look 53-58 ms against 49-52 ms on
    long-lived ones, 2 cores, 2026-12-06). Holds :data:`ENCODER_LOCK` and torch's thread count
    at one for the call.
    """
    if len(starts) <= 1:
        run_batches(batch, starts, 1, True, "moodboard-side")
        return
    import torch

    side = shared_pool("moodboard-side", len(starts) - 1)
    with ENCODER_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            futures = [side.submit(batch, s) for s in starts[1:]]
            try:
                batch(starts[0])
            finally:
                errors = [f.exception() for f in futures]
            for exc in errors:
                if exc is not None:
                    raise exc
        finally:
            torch.set_num_threads(before)


class ModelThread:
    """One long-lived thread that runs a server's model calls (every surface run).

    Torch's CPU backend (OpenMP) keeps a team of worker threads per thread that runs a parallel
    op, and once the teams hold more threads than the machine has cores, OpenMP stops spinning
    between parallel regions: on 2 cores one query encode then takes 16 ms instead of 7.
    FastAPI runs each request on any of its pool's threads, so a server sends its model work
    here and one team serves every request. A call made on this thread runs at once.

    Parameters
    ----------
    name
        The thread's name.
    """

    def __init__(self, name: str = "moodboard-model") -> None:
        self._pool = ThreadPoolExecutor(1, name)
        self._ident = self._pool.submit(threading.get_ident).result()

    def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the model thread; its result, or its exception raised."""
        if threading.get_ident() == self._ident:
            return fn(*args, **kwargs)
        return self._pool.submit(fn, *args, **kwargs).result()

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``run`` for an event loop: the loop awaits the model thread, with no pool thread
        in between (one thread hop less per request: 1.4 ms of a 16 ms ``/search``)."""
        return await asyncio.wrap_future(self._pool.submit(fn, *args, **kwargs))


_MODEL_THREAD: ModelThread | None = None
_MODEL_THREAD_LOCK = threading.Lock()


def model_thread() -> ModelThread:
    """The process's one :class:`ModelThread`, started on first use."""
    global _MODEL_THREAD
    with _MODEL_THREAD_LOCK:
        if _MODEL_THREAD is None:
            _MODEL_THREAD = ModelThread()
        return _MODEL_THREAD


def in_own_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a new thread that ends with the call; its result, or its
    exception raised.

    The OpenMP team a torch op starts on that thread ends with it, so a long-lived caller (a
    server's main or watcher thread loading a new version) leaves no second team behind to
    slow the :class:`ModelThread` down.
    """
    with ThreadPoolExecutor(1, "moodboard-once") as pool:
        return pool.submit(fn, *args, **kwargs).result()
