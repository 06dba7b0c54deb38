"""ClientConnection: what only the HTTP protocol knows about a client's connection, for the app.

The protocol class (``protocol.py``) puts one per connection into every request's ASGI scope
as ``scope["extensions"]["modgate.connection"]``; ``client_connection(scope)`` reads it back
(None under servers that do not offer it, e.g. Starlette's TestClient).

What the app cannot learn from ASGI alone is how much of what it sent has *reached* the client.
uvicorn's ``send`` returns once bytes are handed to the transport, and the transport buffer and
the kernel's socket buffers hold megabytes: a small zip is "sent" whole while the client has
read 1 KiB and gone. ``unsent_bytes`` adds up everything not yet acknowledged by the client's
TCP stack: the transport's write buffers (TLS plaintext and ciphertext) and the kernel's send
queue of unsent plus unacknowledged bytes (``SIOCOUTQ``, Linux: ``tcp_ioctl`` answers
``write_seq - snd_una``; tcp(7) calls it "unsent data" but it counts unacknowledged data too).

    connection = client_connection(scope)
    if connection is not None and connection.unsent_bytes() == 0:
        ...  # the client's TCP stack has acknowledged everything sent so far
"""

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
from collections.abc import Callable
from typing import Any, Protocol

from starlette.types import Scope

CONNECTION_EXTENSION = "modgate.connection"
_INT = struct.Struct("i")


class ClientConnection(Protocol):
    """One client connection, as the protocol class sees it."""

    @property
    def lost(self) -> bool:
        """The connection is closed (by the client, a reset, a timeout or ``abort``)."""
        ...

    @property
    def tracks_acknowledgements(self) -> bool:
        """Whether ``unsent_bytes`` can ever answer here (Linux TCP); if not, what was
        written is all that can be known."""
        ...

    def unsent_bytes(self) -> int | None:
        """Bytes written that the client's TCP stack has not acknowledged yet.

        None when it cannot be told now: the connection was reset (the kernel's queue length
        is stale then) or the platform cannot tell. After the connection is lost: the count
        taken when the client closed its end (0 when it had everything), else None."""
        ...

    async def until_lost(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the connection to be lost; True if it was."""
        ...

    def abort(self) -> None:
        """Reset the connection now (TCP RST): nothing more is sent, not even a TLS alert."""
        ...


def client_connection(scope: Scope) -> ClientConnection | None:
    """The request's ``ClientConnection``, or None when the server does not offer one."""
    extensions = scope.get("extensions") or {}
    connection: ClientConnection | None = extensions.get(CONNECTION_EXTENSION)
    return connection


def kernel_unacked_bytes(sock: Any) -> int | None:
    """Bytes in the socket's send queue not yet acknowledged by the peer (None if unknown)."""
    if sock is None:
        return None
    try:
        fd = sock.fileno()
        if fd < 0:
            return None
        answer = fcntl.ioctl(fd, termios.TIOCOUTQ, bytes(_INT.size))  # TIOCOUTQ == SIOCOUTQ
    except OSError:  # closed, or not a TCP socket on Linux
        return None
    unacked: int = _INT.unpack(answer)[0]
    return unacked


class SocketConnection:
    """``ClientConnection`` over an asyncio transport (TLS or not) and its TCP socket.

    ``transport`` is what HTTP writes to; ``raw`` the TCP transport under it (the same
    object without TLS). The protocol class calls ``peer_closed`` when the client's FIN
    arrives (the socket is still open then) and ``connection_lost`` at the end."""

    def __init__(
        self, transport: asyncio.Transport, raw: asyncio.Transport, on_abort: Callable[[], None]
    ) -> None:
        self._transport = transport
        self._raw = raw
        self._socket = raw.get_extra_info("socket")
        self._on_abort = on_abort
        self._lost = asyncio.Event()
        self._unsent_at_close: int | None = None
        self._tracks = kernel_unacked_bytes(self._socket) is not None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    @property
    def tracks_acknowledgements(self) -> bool:
        return self._tracks

    def unsent_bytes(self) -> int | None:
        if self._lost.is_set():
            return self._unsent_at_close
        return self._measure()

    def _measure(self) -> int | None:
        # After a reset the kernel keeps answering the last queue length, which would read as
        # progress for every chunk "written" since; the first write that fails marks the
        # transport closing (before the loss is reported), so stop trusting the queue then.
        if self._raw.is_closing():
            return None
        kernel = kernel_unacked_bytes(self._socket)
        if kernel is None:
            return None
        queued = self._transport.get_write_buffer_size()
        if self._raw is not self._transport:
            queued += self._raw.get_write_buffer_size()
        return queued + kernel

    async def until_lost(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._lost.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def abort(self) -> None:
        if self._lost.is_set():
            return
        reset_on_close(self._socket)
        self._on_abort()
        self._transport.abort()

    # -- called by the protocol class --------------------------------------------------------
    def peer_closed(self) -> None:
        if not self._lost.is_set():
            self._unsent_at_close = self._measure()

    def connection_lost(self) -> None:
        self._lost.set()


def reset_on_close(sock: Any) -> None:
    """Make the socket's close send a TCP RST and drop what is queued (SO_LINGER 0)."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
