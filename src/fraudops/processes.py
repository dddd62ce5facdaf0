"""Helpers to run a server as a child process: a free port, a readiness wait, a clean stop."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(
    url: str, server: subprocess.Popen, timeout: float = 300, log: Path | None = None
) -> None:
    """Wait until ``GET url`` answers 200.

    Raises:
        RuntimeError: the process exited, or ``timeout`` seconds passed (the log's tail is
            in the message when ``log`` is given).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {server.returncode}{_tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout} s{_tail(log)}")


def stop(server: subprocess.Popen, timeout: float = 60) -> bool:
    """SIGINT (a clean stop: logs flushed), then SIGKILL after ``timeout``; True if clean."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)
        return False


def _tail(log: Path | None) -> str:
    if log is None or not log.is_file():
        return ""
    return "\n" + log.read_text(errors="replace")[-3000:]
