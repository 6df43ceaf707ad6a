"""Running an encoder's batches on torch's CPU threads, one call at a time.

Both encoders set torch's process-wide thread count for the length of a call and restore it
after, so calls hold :data:`ENCODER_LOCK` and never interleave.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

#: Held while an encoder runs its model (torch's thread count is process-wide).
ENCODER_LOCK = threading.Lock()


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
