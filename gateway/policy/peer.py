"""Who is listening on a Unix socket: the kernel's answer, not the path's.

The supervised OPA listens on a socket in a directory only modgate's user can enter; this
check is the second lock. The kernel knows the credentials of the process that created the
listening socket (``SO_PEERCRED`` on Linux, see unix(7)); any pid but the child's own means
something else answers there. modgate asks after every start (``check_socket_peer``: the
start fails) and on every new connection of the policy engine (``OwnChildConnector``: the
connection fails, before a byte is sent), so no decision is ever taken from a process
modgate did not start, even one that took the path of an OPA that just died.

    check_socket_peer("/tmp/modgate-opa-x/opa-1.sock", child.pid)   # or ConfigError
    aiohttp.ClientSession(connector=OwnChildConnector(path, child.pid))
"""

import logging
import os
import socket
import struct
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

from ..errors import ConfigError

log = logging.getLogger(__name__)

# struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit ints on Linux.
_UCRED = struct.Struct("3i")


def socket_peer(path: str) -> tuple[int, int]:
    """The (pid, uid) of the process listening on the Unix socket at ``path``."""
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:  # not Linux: no way to ask the kernel, so refuse rather than trust
        raise ConfigError(
            "this platform cannot tell which process listens on a Unix socket (no "
            "SO_PEERCRED): run OPA yourself and set policy.opa_url"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(path)
        except OSError as exc:
            raise ConfigError(f"cannot connect to the OPA socket {path}: {exc.strerror}") from exc
        return connected_peer(sock)


def connected_peer(sock: Any) -> tuple[int, int]:
    """The (pid, uid) at the other end of a connected Unix socket (or uvloop's stand-in)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, _gid = _UCRED.unpack(raw)
    return int(pid), int(uid)


def _mismatch(path: str, pid: int, uid: int, expected_pid: int) -> str | None:
    if pid == expected_pid and uid == os.geteuid():
        return None
    return (
        f"the OPA socket {path} is served by pid {pid} (uid {uid}), not by the OPA "
        f"modgate started (pid {expected_pid}): refusing to ask it for decisions"
    )


def check_socket_peer(path: str, expected_pid: int) -> None:
    """Raise ConfigError unless ``expected_pid``, as this user, listens on ``path``."""
    problem = _mismatch(path, *socket_peer(path), expected_pid)
    if problem is not None:
        raise ConfigError(problem)


class OwnChildConnector(aiohttp.UnixConnector):
    """A UnixConnector whose every new connection must end at ``expected_pid``."""

    def __init__(self, path: str, expected_pid: int) -> None:
        super().__init__(path=path)
        self._expected_pid = expected_pid

    # aiohttp calls this once per new connection, before anything is sent on it. It is
    # not public API: tests/hardening/test_opa_supervision.py fails if it stops being
    # called (the impostor at the old socket path would then be asked).
    async def _create_connection(self, *args: Any, **kwargs: Any) -> ResponseHandler:
        protocol = await super()._create_connection(*args, **kwargs)
        transport = protocol.transport
        sock = None if transport is None else transport.get_extra_info("socket")
        try:
            problem = (
                "cannot tell who listens on the OPA socket"
                if sock is None
                else _mismatch(self.path, *connected_peer(sock), self._expected_pid)
            )
        except OSError as exc:
            problem = f"cannot tell who listens on the OPA socket: {exc.strerror}"
        if problem is not None:
            log.error("%s", problem)
            if transport is not None:
                transport.close()
            raise aiohttp.ClientConnectionError(problem)
        return protocol
