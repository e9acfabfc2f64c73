"""Ending the server processes the tests start (the registry, the peers)."""

from __future__ import annotations

import signal
import subprocess


def stop_process(process: subprocess.Popen[str], timeout: float = 10) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; reaps the process and returns its
    exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
