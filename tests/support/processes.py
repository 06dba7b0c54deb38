"""Stopping a server subprocess the same way everywhere: terminate, wait, then kill."""

from __future__ import annotations

import subprocess
from typing import IO


def stop_process(
    process: subprocess.Popen[bytes] | None, log: IO[bytes] | None, timeout_s: float = 10
) -> None:
    """Stop ``process`` (if still running) and close its log file."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if log is not None:
        log.close()
