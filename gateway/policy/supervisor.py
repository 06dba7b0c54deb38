"""SupervisedOpa: the OPA server modgate runs itself when no ``policy.opa_url`` is set.

For ``make run`` and small installs: one ``opa run --server --watch`` on the bundled
``policies/`` directory. ``--watch`` reloads edited policies and data without a restart; a
bad edit keeps the last good policy serving (OPA logs the error).

Only modgate can talk to it:

- it listens on no TCP port, only on a Unix socket (mode 0600) inside a fresh directory
  that ``tempfile.mkdtemp`` makes mode 0700 for modgate's user, removed on exit;
- every start uses a new socket path (``opa-1.sock``, ``opa-2.sock``, ...), so a
  restarted OPA never comes back on an address something else may have taken meanwhile;
- after every start, and on every new connection, modgate asks the kernel who listens on
  the socket (``peer.py``) and refuses anything but its own child.

A process running as modgate's own user (or root) can still reach the socket; it could as
well edit the watched ``policies_dir`` or read modgate's environment. OPA's
``--authorization=basic`` with a read-only authz policy would have refused its writes,
but cost OPA 250-600 µs of CPU per decision here (it builds and evaluates the authz query
for every request, server/authorizer/authorizer.go), against 650-850 µs for the decision
itself: a third more work that protects nothing such a process could not get around. Run
modgate as its own user.

If the process dies, the listeners (the policy engine) are told at once that it is gone,
so nothing is asked at the old address again; it is restarted on a new socket and the
listeners get the new address. While it is down, decisions fail and requests are refused
(fail closed).
"""

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from ..errors import ConfigError
from ..resources import policies_dir
from ..settings import PolicySettings
from .opa import OpaEndpoint
from .opa_command import DEFAULT_OPA_LOG_LEVEL, opa_run_args
from .peer import check_socket_peer

log = logging.getLogger(__name__)

REPO_OPA = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "opa"
START_TIMEOUT_S = 15.0
RESTART_DELAY_S = 0.5
MAX_SOCKET_PATH_BYTES = 100  # sun_path holds 108 bytes on Linux, 104 on the BSDs

Listener = Callable[[OpaEndpoint | None], Awaitable[None]]  # None: OPA is down


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


def _child_environment() -> dict[str, str]:
    """modgate's environment without its own settings (database URL, tokens): a policy
    can read OPA's environment (``opa.runtime().env``) and must not find secrets there."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MODGATE_")}


def supervised_opa(policy: PolicySettings) -> "SupervisedOpa":
    """The OPA that modgate runs itself on ``policy`` (whose ``opa_url`` is empty)."""
    return SupervisedOpa(
        find_opa(policy.opa_binary),
        policies_dir(policy.policies_dir),
        log_level=policy.opa_log_level,
        decision_logs=policy.decision_logs,
    )


class SupervisedOpa:
    """``async with SupervisedOpa(binary, policies_dir) as opa: opa.endpoint``

    ``opa.on_restart(listener)`` registers ``await listener(None)``, called as soon as OPA
    has died, and ``await listener(new_endpoint)`` after each successful restart. Leaving
    the block stops OPA and removes its directory."""

    def __init__(
        self,
        binary: Path,
        policies_dir: Path,
        *,
        log_level: str = DEFAULT_OPA_LOG_LEVEL,
        decision_logs: bool = False,
    ) -> None:
        if not policies_dir.is_dir():
            raise ConfigError(f"config key policy.policies_dir: no such directory {policies_dir}")
        self._binary = binary
        self._policies_dir = policies_dir
        self._log_level = log_level
        self._decision_logs = decision_logs
        self._directory: Path | None = None
        self._starts = 0
        self._endpoint: OpaEndpoint | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []

    @property
    def endpoint(self) -> OpaEndpoint:
        """The address of the OPA running now (a new one after each restart)."""
        if self._endpoint is None:
            raise ConfigError("the supervised OPA is not running")
        return self._endpoint

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def on_restart(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _argv(self, socket_path: Path) -> list[str]:
        return [
            str(self._binary),
            *opa_run_args(
                f"unix://{socket_path}",
                [str(self._policies_dir)],
                log_level=self._log_level,
                decision_logs=self._decision_logs,
                extra=("--unix-socket-perm", "600"),
            ),
        ]

    def _next_socket_path(self) -> Path:
        if self._directory is None:
            raise ConfigError("the supervised OPA has no directory")
        self._starts += 1
        path = self._directory / f"opa-{self._starts}.sock"
        if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
            raise ConfigError(
                f"the OPA socket path {path} is too long for a Unix socket: "
                "set TMPDIR to a shorter directory"
            )
        return path

    async def _start(self) -> None:
        socket_path = self._next_socket_path()
        process = await asyncio.create_subprocess_exec(
            *self._argv(socket_path),
            stdin=asyncio.subprocess.DEVNULL,
            env=_child_environment(),
            # A session (and process group) of its own: Ctrl-C in a terminal, or a signal to
            # modgate's group, reaches modgate alone, which drains its requests with OPA
            # still deciding, then stops OPA itself. (uvloop knows no process_group=.)
            start_new_session=True,
        )
        self._process = process
        try:
            await self._wait_healthy(process, socket_path)
            # The path is in a directory only this user can enter; the kernel confirms
            # that the process answering there is the child just started.
            await asyncio.to_thread(check_socket_peer, str(socket_path), process.pid)
        except BaseException:
            await _stop(process)
            raise
        self._endpoint = OpaEndpoint.for_socket(str(socket_path), process.pid)
        log.info(
            "supervised OPA (pid %s) serving %s on %s", process.pid, self._policies_dir, socket_path
        )

    async def _wait_healthy(self, process: asyncio.subprocess.Process, socket_path: Path) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        connector = aiohttp.UnixConnector(path=str(socket_path))
        async with aiohttp.ClientSession(connector=connector) as session:
            while loop.time() < deadline:
                if process.returncode is not None:
                    raise ConfigError(
                        f"OPA exited with status {process.returncode} at start: "
                        f"check the policies in {self._policies_dir} (`modgate policy check`)"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get("http://opa/health") as response:
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
            if self._endpoint is not None:
                old, self._endpoint = self._endpoint, None
                await self._tell(None)  # never ask the old address again
                with contextlib.suppress(OSError):
                    os.unlink(old.unix_socket)
            # Reported only after the delay: when modgate is being stopped as a whole (a
            # signal to every process of its cgroup, as systemd sends), its shutdown
            # cancels this task meanwhile, and a clean stop is not logged as a crash.
            await asyncio.sleep(RESTART_DELAY_S)
            log.error("supervised OPA exited with status %s; restarting", status)
            try:
                await self._start()
            except ConfigError as exc:
                log.error("supervised OPA did not restart: %s", exc.reason)
                continue
            except OSError as exc:  # e.g. the binary was removed: keep trying, fail closed
                log.error("supervised OPA did not restart: %s", exc)
                continue
            await self._tell(self.endpoint)

    async def _tell(self, endpoint: OpaEndpoint | None) -> None:
        for listener in self._listeners:
            try:
                await listener(endpoint)
            except Exception:  # a listener's bug must not stop the supervision
                log.exception("supervised OPA listener failed")

    async def __aenter__(self) -> "SupervisedOpa":
        self._directory = Path(tempfile.mkdtemp(prefix="modgate-opa-"))  # mode 0700
        try:
            await self._start()
        except BaseException:
            self._remove_directory()
            raise
        self._watchdog = asyncio.create_task(self._watch(), name="opa-watchdog")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        process, self._process = self._process, None
        if process is not None:
            await _stop(process)
        self._remove_directory()

    def _remove_directory(self) -> None:
        directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=5)
    except TimeoutError:
        process.kill()
        await process.wait()
