"""A real OPA server (`opa run --server`) on a free loopback port, watching a policy dir.

It runs with the production command line (gateway/policy/opa_command.py). Extra `opa run`
arguments and paths start it the way a deployment does, e.g.
`--authentication=token --authorization=basic` with an authz policy directory; `token`
is then sent with the health probe. `tls` serves https."""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

from gateway.policy.opa_command import DEFAULT_OPA_LOG_LEVEL, opa_run_args
from tests.support.ports import free_port

REPO_OPA = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "opa"
_MISSING = (
    "OPA binary not found at {repo} nor on PATH: run `make test` (it builds/installs opa "
    "into .tools/bin)"
)


def _runnable(binary: Path) -> bool:
    try:
        proc = subprocess.run(
            [str(binary), "version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False  # e.g. "Text file busy" while it is still being written
    return proc.returncode == 0


def find_opa(wait_s: float = 120.0) -> Path:
    """The repo's .tools/bin/opa (waiting while it is still being built), else `opa` on PATH."""
    deadline = time.monotonic() + wait_s
    while REPO_OPA.exists():
        if _runnable(REPO_OPA):
            return REPO_OPA
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    found = shutil.which("opa")
    if found and _runnable(Path(found)):
        return Path(found)
    raise RuntimeError(_MISSING.format(repo=REPO_OPA))


class OpaServer:
    """`opa run --server --watch` over `policies_dir`; context manager, `.url`, `.stop()`."""

    def __init__(
        self,
        policies_dir: Path,
        binary: Path | None = None,
        log_path: Path | None = None,
        *,
        extra_args: tuple[str, ...] = (),
        extra_paths: tuple[Path, ...] = (),
        log_level: str = DEFAULT_OPA_LOG_LEVEL,
        token: str = "",
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        self.policies_dir = Path(policies_dir)
        self.binary = binary or find_opa()
        self.extra_args = extra_args
        self.extra_paths = tuple(str(path) for path in extra_paths)
        self.log_level = log_level
        self.token = token
        self.tls = tls  # (cert, key, CA): serve https with that pair, probe it with the CA
        self.port = free_port()
        if log_path is None:  # kept after the run, for debugging failed tests
            fd, log_name = tempfile.mkstemp(prefix="modgate-opa-", suffix=".log")
            os.close(fd)
            log_path = Path(log_name)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("OPA is not running")
        return self._proc.pid

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> OpaServer:
        if self._proc is not None:
            return self
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [
                str(self.binary),
                *opa_run_args(
                    f"127.0.0.1:{self.port}",
                    [str(self.policies_dir), *self.extra_paths],
                    log_level=self.log_level,
                    extra=(*self.extra_args, *self._tls_args()),
                ),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self.healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"OPA did not become healthy within {timeout_s}s; log {self.log_path}:\n"
            + self.log_path.read_text(errors="replace")[-3000:]
        )

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        cert, key, _ca = self.tls
        return ["--tls-cert-file", str(cert), "--tls-private-key-file", str(key)]

    def healthy(self) -> bool:
        request = urllib.request.Request(self.url + "/health")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            context = None if self.tls is None else ssl.create_default_context(cafile=self.tls[2])
            with urllib.request.urlopen(request, timeout=1, context=context) as resp:
                return bool(resp.status == 200)
        except urllib.error.HTTPError as err:
            err.close()
            return False
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> OpaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
