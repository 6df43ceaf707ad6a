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
