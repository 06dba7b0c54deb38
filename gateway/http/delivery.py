"""StreamedDelivery: a streamed response that knows how its delivery ended.

It replaces Starlette's ``StreamingResponse`` for zips. When it is done it hands one
``Delivery`` to its ``on_end`` callback (the app turns it into the audit completion):

- the bytes that reached the client, meaning acknowledged by the client's TCP stack, and
  the SHA-256 of exactly those bytes;
- how it ended: 200 delivered whole; 499 ``client_disconnected`` (the client went away
  before it had everything) or ``client_too_slow`` (it stopped taking bytes for
  ``send_timeout_s``, or had not taken the whole zip by ``deadline_s``, and was cut
  off); 502 ``upstream_failed`` or ``zip_too_large``, 504 ``upstream_timeout`` (the
  upstream broke off, went silent, or sent too much).

When the upstream fails mid-body the client connection is reset, before the body's end:
with the upstream's Content-Length passed on the client sees a short body, with chunked
encoding it never gets the last chunk, so it can never take a truncated zip for a whole one.

What reached the client is known from the ``modgate.connection`` extension that modgate's
protocol class puts in the scope (``connection.py``): after the last chunk the delivery
waits, bounded, until the client's TCP stack has acknowledged everything or the connection
is lost. Without the extension (Starlette's TestClient) it falls back to counting what was
sent and to ``http.disconnect`` from ``receive``.

    response = StreamedDelivery(reply.chunks(), headers, max_bytes=limit, on_end=record)
"""

import asyncio
import hashlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import UpstreamError
from .connection import ClientConnection, client_connection

CLIENT_GONE = 499  # nginx's "client closed request": the status sent is not what was delivered
# After the last chunk a client has CONFIRM_BASE_S, plus one second per
# CONFIRM_MIN_BYTES_PER_S still in flight, to acknowledge everything; then it is cut off.
CONFIRM_BASE_S = 5.0
CONFIRM_MIN_BYTES_PER_S = 64 * 1024
POLL_FIRST_S, POLL_MAX_S = 0.002, 0.1


@dataclass(frozen=True, slots=True)
class Delivery:
    status: int
    bytes: int
    sha256: str
    error_code: str | None = None


class _Ledger:
    """The running SHA-256 of what was written, with a snapshot at every chunk boundary not
    yet known to be acknowledged: the hash of exactly the acknowledged prefix is at hand."""

    def __init__(self) -> None:
        self.written = 0
        self._digest = hashlib.sha256()
        self._marks = deque([(0, self._digest.copy())])

    def add(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self.written += len(chunk)
        self._marks.append((self.written, self._digest.copy()))

    def acknowledged(self, unsent: int) -> None:
        """The client's TCP stack has all but the last ``unsent`` bytes written."""
        received = self.written - unsent
        while len(self._marks) > 1 and self._marks[1][0] <= received:
            self._marks.popleft()

    def delivery(self, status: int, error_code: str | None = None) -> Delivery:
        """What is known to have reached the client (rounded down to a chunk boundary)."""
        size, digest = self._marks[0]
        return Delivery(status, size, digest.hexdigest(), error_code)

    def whole(self) -> Delivery:
        return Delivery(200, self.written, self._digest.hexdigest())


class StreamedDelivery(Response):
    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        headers: Mapping[str, str],
        *,
        max_bytes: int,
        on_end: Callable[[Delivery], None],
        send_timeout_s: float = 30.0,
        deadline_s: float = 900.0,
    ) -> None:
        self.chunks = chunks
        self.max_bytes = max_bytes
        self.send_timeout_s = send_timeout_s
        self.deadline_s = deadline_s
        self.on_end = on_end
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = client_connection(scope)
        gone = asyncio.Event()  # without the extension: set on http.disconnect
        watcher = None if connection else asyncio.create_task(_watch_disconnect(receive, gone))
        ledger = _Ledger()
        delivery = ledger.delivery(500, "internal_error")
        failure: UpstreamError | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            delivery, failure = await self._stream(send, connection, gone, ledger)
            if failure is None and delivery.status == 200:
                delivery = await _confirmed(connection, ledger)
        except BaseException:  # interrupted (cancelled at shutdown) or a bug: cut it off
            if connection is not None:
                _note_acknowledged(ledger, connection)
                connection.abort()
            delivery = ledger.delivery(500, "internal_error")
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
            if isinstance(self.chunks, AsyncGenerator):
                await self.chunks.aclose()
            self.on_end(delivery)
        if failure is not None and connection is None:
            raise failure  # no other way to make the server cut the connection

    async def _stream(
        self, send: Send, connection: ClientConnection | None, gone: asyncio.Event, ledger: _Ledger
    ) -> tuple[Delivery, UpstreamError | None]:
        """Pass the chunks on; the delivery so far and the upstream failure, if any.

        A client that stops reading would otherwise hold this send (uvicorn waits for its
        buffers to drain, without a deadline), the upstream connection and the upstream
        itself for as long as it likes: each send gets ``send_timeout_s`` and the whole
        delivery ``deadline_s``. uvicorn writes only after the wait, so a chunk cut off here
        was never written."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        try:
            async for chunk in self.chunks:
                if ledger.written + len(chunk) > self.max_bytes:
                    too_large = UpstreamError(f"zip larger than {self.max_bytes} bytes")
                    return _cut_off(connection, ledger, 502, "zip_too_large"), too_large
                wait_s = min(self.send_timeout_s, deadline - loop.time())
                try:
                    async with asyncio.timeout(max(wait_s, 0)):
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except TimeoutError:
                    return _cut_off(connection, ledger, CLIENT_GONE, "client_too_slow"), None
                if connection is None:
                    ledger.add(chunk)
                    ledger.acknowledged(0)  # what was sent is all that can be known here
                    if gone.is_set():
                        return ledger.delivery(CLIENT_GONE, "client_disconnected"), None
                    continue
                if connection.lost:  # then uvicorn's send returned without writing the chunk
                    _note_acknowledged(ledger, connection)
                    return ledger.delivery(CLIENT_GONE, "client_disconnected"), None
                ledger.add(chunk)
                _note_acknowledged(ledger, connection)  # one ioctl per chunk (64 KiB)
        except UpstreamError as exc:
            return _cut_off(connection, ledger, exc.status, exc.code), exc
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return ledger.whole(), None


def _cut_off(
    connection: ClientConnection | None, ledger: _Ledger, status: int, code: str
) -> Delivery:
    """The upstream failed mid-body: reset the client's connection before the body ends."""
    if connection is None:
        ledger.acknowledged(0)
    else:
        _note_acknowledged(ledger, connection)
        connection.abort()
    return ledger.delivery(status, code)


def _note_acknowledged(ledger: _Ledger, connection: ClientConnection) -> None:
    unsent = connection.unsent_bytes()
    if unsent is not None:
        ledger.acknowledged(unsent)


async def _confirmed(connection: ClientConnection | None, ledger: _Ledger) -> Delivery:
    """After the last chunk: whole once the client's TCP stack acknowledged everything."""
    if connection is None or not connection.tracks_acknowledgements:
        return ledger.whole()  # what was sent is all that can be known
    loop = asyncio.get_running_loop()
    unsent = connection.unsent_bytes()
    deadline = loop.time() + CONFIRM_BASE_S + (unsent or 0) / CONFIRM_MIN_BYTES_PER_S
    poll_s = POLL_FIRST_S
    while True:
        if unsent == 0:
            return ledger.whole()
        if unsent is not None:
            ledger.acknowledged(unsent)
        if connection.lost:
            return ledger.delivery(CLIENT_GONE, "client_disconnected")
        remaining = deadline - loop.time()
        if remaining <= 0:
            connection.abort()
            return ledger.delivery(CLIENT_GONE, "client_too_slow")
        await connection.until_lost(min(poll_s, remaining))
        poll_s = min(poll_s * 2, POLL_MAX_S)
        unsent = connection.unsent_bytes()


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return
