"""Run the real `modgate serve` as a subprocess over TLS, the way a user starts it."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

from .ports import free_port
from .processes import stop_process

REPO = Path(__file__).resolve().parents[2]


class GatewayProcess:
    """`modgate serve` on 127.0.0.1:<free port> with the given MODGATE_* settings, and its
    metrics listener on another free port (unless ``env`` sets MODGATE_METRICS_LISTEN)."""

    def __init__(
        self,
        env: dict[str, str],
        ca_file: Path,
        log_path: Path,
        probe_cert: tuple[Path, Path] | None = None,
        config: Path | None = None,
    ) -> None:
        """``probe_cert`` (certificate, key): what the start-up probe presents to a gateway
        that requires client certificates; ``config``: a TOML settings file (for what no
        variable can say, such as ``[[jwt.issuers]]`` tables)."""
        self.config = config
        self.port = free_port()
        self.probe_cert = probe_cert
        self.metrics_listen = f"127.0.0.1:{free_port()}"
        self.ca_file = ca_file
        self.log_path = log_path
        self.env = {
            **os.environ,
            "MODGATE_METRICS_LISTEN": self.metrics_listen,
            **env,
            "MODGATE_SERVER_PORT": str(self.port),
            "MODGATE_SERVER_HOST": "127.0.0.1",
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("modgate is not running")
        return self._process.pid

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """The metrics listener's page (plain http, no credentials)."""
        return f"http://{self.env['MODGATE_METRICS_LISTEN']}/metrics"

    def start(self, timeout_s: float = 30.0) -> GatewayProcess:
        log = self.log_path.open("ab")
        self._log = log
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"]
            + (["--config", str(self.config)] if self.config else []),
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if self.probe_cert is not None:
            context.load_cert_chain(*self.probe_cert)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()  # closes the log file too
                raise RuntimeError(f"modgate exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", context=context, timeout=1):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"modgate did not answer /healthz in {timeout_s} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        log, self._log = self._log, None
        stop_process(process, log)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
