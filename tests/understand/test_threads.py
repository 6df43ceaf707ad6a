"""The model thread a server runs its requests' model work on, and loads off it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from moodboard.understand.threads import ModelThread, in_own_thread, model_thread


def test_the_model_thread_runs_every_call_on_one_thread_and_raises_what_it_raised() -> None:
    mt = ModelThread("test-model")
    seen = {mt.run(threading.get_ident) for _ in range(5)}
    seen |= {asyncio.run(mt.call(threading.get_ident)) for _ in range(3)}  # from an event loop
    assert len(seen) == 1 and seen != {threading.get_ident()}
    assert mt.run(lambda: mt.run(threading.get_ident)) in seen  # nested: runs at once, no deadlock
    with pytest.raises(ZeroDivisionError):
        mt.run(lambda: 1 / 0)
    assert mt.run(lambda x, y=0: x + y, 2, y=3) == 5  # and it still serves after a failure
    assert model_thread() is model_thread()


def test_a_call_in_its_own_thread_returns_and_raises_and_the_thread_ends() -> None:
    ran = in_own_thread(threading.current_thread)
    assert ran is not threading.current_thread() and not ran.is_alive()
    with pytest.raises(KeyError):
        in_own_thread({}.__getitem__, "missing")


def test_side_by_side_runs_the_parts_at_once_on_reused_threads_and_raises_a_parts_error() -> None:
    import torch

    from moodboard.understand.threads import side_by_side

    both = threading.Barrier(2, timeout=10)  # each part waits for the other: at once or never
    seen: dict[int, tuple[int, int]] = {}

    def part(j: int) -> None:
        both.wait()
        seen[j] = (threading.get_ident(), torch.get_num_threads())

    before = torch.get_num_threads()
    side_by_side(part, [0, 1])
    first = dict(seen)
    side_by_side(part, [0, 1])
    assert first[0][0] == threading.get_ident()  # the first part on the caller's thread
    assert first[1][0] != threading.get_ident() and seen[1][0] == first[1][0]  # side: reused
    assert first[0][1] == 1 and torch.get_num_threads() == before  # one core a part, restored

    def fails(j: int) -> None:
        if j == 1:
            raise ValueError("part 1 failed")

    with pytest.raises(ValueError, match="part 1 failed"):
        side_by_side(fails, [0, 1])
