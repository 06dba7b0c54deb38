"""SupervisedOpa: the OPA server modgate runs itself when no ``policy.opa_url`` is set.

For ``make run`` and small installs: one ``opa run --server --watch`` on the bundled
``policies/`` directory, bound to 127.0.0.1 on a free port. ``--watch`` reloads edited
policies and data without a restart; a bad edit keeps the last good policy serving (OPA
logs the error). If the process dies it is restarted; while it is down, decisions fail
and requests are refused (fail closed).
"""

import asyncio
import contextlib
import logging
import shutil
import socket
from pathlib import Path

import aiohttp

from ..errors import ConfigError

log = logging.getLogger(__name__)

REPO_OPA = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "opa"
START_TIMEOUT_S = 15.0
RESTART_DELAY_S = 1.0


def find_opa(configured: str) -> Path:
    """The OPA binary: the configured one, the project's ``.tools/bin/opa``, or PATH."""
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"config key policy.opa_binary: no such file {configured!r}")
        return path
    if REPO_OPA.is_file():
        return REPO_OPA
    found = shutil.which("opa")
    if found is None:
        raise ConfigError(
            "no OPA binary: run `make tools` (go install of the pinned OPA into .tools/bin), "
            "set policy.opa_binary (MODGATE_POLICY_OPA_BINARY), or policy.opa_url to a server"
        )
    return Path(found)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SupervisedOpa:
    """``async with SupervisedOpa(binary, policies_dir) as opa: opa.url``"""

    def __init__(self, binary: Path, policies_dir: Path) -> None:
        if not policies_dir.is_dir():
            raise ConfigError(f"config key policy.policies_dir: no such directory {policies_dir}")
        self._binary = binary
        self._policies_dir = policies_dir
        self._port = _free_port()
        self.url = f"http://127.0.0.1:{self._port}"
        self._process: asyncio.subprocess.Process | None = None
        self._watchdog: asyncio.Task[None] | None = None

    def _argv(self) -> list[str]:
        return [
            str(self._binary),
            "run",
            "--server",
            "--skip-version-check",
            "--watch",
            # Policy data is read on every decision and written only on a reload; this store
            # mode roughly halved the per-blacklist-entry cost of a decision, measured here.
            "--optimize-store-for-read-speed",
            "--addr",
            f"127.0.0.1:{self._port}",
            "--ignore",
            "*_test.rego",
            "--log-level",
            "info",
            str(self._policies_dir),
        ]

    async def _start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._argv(), stdin=asyncio.subprocess.DEVNULL
        )
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                if self._process.returncode is not None:
                    raise ConfigError(
                        f"OPA exited with status {self._process.returncode} at start: "
                        f"check the policies in {self._policies_dir} (`modgate policy check`)"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"{self.url}/health") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise ConfigError(f"OPA did not become healthy within {START_TIMEOUT_S} s")

    async def _watch(self) -> None:
        while True:
            process = self._process
            if process is None:
                return
            status = await process.wait()
            log.error("supervised OPA exited with status %s; restarting", status)
            await asyncio.sleep(RESTART_DELAY_S)
            try:
                await self._start()
            except ConfigError as exc:
                log.error("supervised OPA did not restart: %s", exc.reason)

    async def __aenter__(self) -> "SupervisedOpa":
        await self._start()
        self._watchdog = asyncio.create_task(self._watch(), name="opa-watchdog")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except TimeoutError:
                process.kill()
                await process.wait()
