"""Cooperative cancellation: SIGTERM and SIGINT set a flag that long loops check at safe points."""

import signal
import threading

from engine.errors import Cancelled

_event = threading.Event()


def install_handlers() -> None:
    """Route SIGTERM and SIGINT to the cancel flag (main thread only)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: _event.set())


def request() -> None:
    _event.set()


def reset() -> None:
    _event.clear()


def requested() -> bool:
    return _event.is_set()


def check() -> None:
    """Raise Cancelled if a cancel was requested. Call between steps, never mid-write."""
    if _event.is_set():
        raise Cancelled()
