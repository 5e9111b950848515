"""Waiting for something to become true, always with a deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; whether it became
    true (never raises on the deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20, what: str = "condition", step: float = 0.05
) -> Any:
    """`predicate`'s first true value; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float = 30) -> None:
    """Until something accepts connections on 127.0.0.1:`port`."""
    wait_for(lambda: listening(port), timeout, f"something listening on port {port}")
