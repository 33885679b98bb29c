"""The SIGTERM handler may interrupt the main thread while it registers a child."""

from __future__ import annotations

from cuda_ci.infra import process


def test_the_handler_can_take_the_children_lock_the_interrupted_thread_holds() -> None:
    with process._CHILDREN_LOCK:  # run() in the main thread, between Popen and communicate
        taken = process._CHILDREN_LOCK.acquire(timeout=1)  # what stop_children() does in the handler
        assert taken, "a SIGTERM arriving there would deadlock the run"
        process._CHILDREN_LOCK.release()
        try:
            process.stop_children()  # returns, and stops nothing that is not registered
        finally:
            process.allow_children()
