"""Stopping modgate stops its OPA quietly; OPA dying on its own is still reported and mended.

The real `modgate serve` with its supervised OPA (SQLite audit, plain http on loopback), in
a session of its own so that it can be signalled the way a terminal's Ctrl-C or
`kill -TERM -<pgid>` signals it: every process of its process group at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.opa import find_opa
from tests.support.ports import free_port

pytestmark = pytest.mark.opa

REPO = Path(__file__).resolve().parents[2]
RESTARTING = "supervised OPA exited"
WAIT_S = 30.0


def opa_child(pid: int) -> int | None:
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in map(int, children.read_text().split()):
            with_args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if with_args[0].endswith(b"opa") and b"run" in with_args:
                return child
    return None


def wait_for(predicate: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"{what}; modgate's stderr:\n{log.read_text()}"
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def modgate(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODGATE_")},
        "MODGATE_TLS_PLAIN_HTTP": "true",
        "MODGATE_SERVER_PORT": str(port),
        "MODGATE_AUDIT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}",
        "MODGATE_UPSTREAM_PUBLIC": "http://127.0.0.1:9",  # never asked here
        "MODGATE_POLICY_OPA_BINARY": str(find_opa()),
    }
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # its own process group, as under a terminal
        )
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        wait_for(lambda: process.poll() is not None or answers(url), "no /healthz", stderr)
        assert process.poll() is None, f"modgate exited at start:\n{stderr.read_text()}"
        yield process, stderr
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_killed_opa_is_restarted_and_stopping_modgate_is_not_reported_as_a_crash(
    modgate: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, stderr = modgate
    first = opa_child(process.pid)
    assert first is not None
    # given OPA killed behind modgate's back
    os.kill(first, signal.SIGKILL)
    # then it is reported and a new one started
    wait_for(lambda: opa_child(process.pid) not in (None, first), "OPA not restarted", stderr)
    wait_for(lambda: RESTARTING in stderr.read_text(), "the crash was not reported", stderr)
    second = opa_child(process.pid)
    assert second is not None
    # when modgate's whole process group is told to stop (Ctrl-C, kill -TERM -<pgid>)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=WAIT_S)
    # then modgate shut down cleanly, stopped its OPA, and reported no second crash
    log = stderr.read_text()
    assert log.count(RESTARTING) == 1, log
    assert "Application shutdown complete" in log, log
    assert not Path(f"/proc/{second}").exists(), f"OPA {second} outlived modgate:\n{log}"
