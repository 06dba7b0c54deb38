"""LimitedHttpToolsProtocol: uvicorn's httptools protocol with the limits uvicorn lacks.

uvicorn 0.54's ``HttpToolsProtocol`` (uvicorn/protocols/http/httptools_impl.py) has no cap on
a request line or on headers (llhttp has none, and httptools buffers a header value whole
before calling ``on_header``), arms its keep-alive timer only after a response (a connection
that never sends a request is never timed out), and its ``limit_concurrency`` answers 503
per request but never closes a connection. This subclass, given to uvicorn as ``http=``,
adds, from ``ServerSettings``:

- ``max_request_line_bytes``: the request target is counted as llhttp hands it over
  (``on_url``) and refused with 414 beyond the line's limit;
- ``max_header_bytes``, ``max_headers``: bytes are counted as they arrive, before the parser
  sees them, and never more than a whole allowed head is fed at once, so a 64 MiB header is
  refused with 431 after a few KiB and never buffered; header lines are counted in
  ``on_header``;
- ``header_timeout_s``: a deadline for a request's line and headers (and body, which the
  proxy protocol never has: a body trickled byte by byte would otherwise hold the
  connection open for ever), from the connection's start for the first request (the TLS
  handshake included) and from the first byte of each later one; then 408 and close (or a
  reset when a response is under way);
- ``keep_alive_timeout_s``: uvicorn's own idle keep-alive timer;
- ``max_connections``: connections are counted from TCP accept, before TLS; one more is reset
  at once.

TLS is set up here, at TCP accept, rather than by uvicorn's listener: a listener's TLS
handshake is invisible to the protocol (``connection_made`` comes after it) and has uvloop's
fixed 60 s timeout, so neither the connection limit nor the header deadline could cover it.
Once the handshake is done, what it negotiated (the verified client certificate, the
version, the suite) goes into every request's scope as the standard ASGI TLS extension,
``scope["extensions"]["tls"]`` (``tls.py``): uvicorn offers none, and nothing of uvicorn is
patched for it, this class builds the scope's extensions itself.

Every refusal is counted in ``metrics.http_refused`` (``modgate_http_refused_total``) by
reason; none reaches the app, so none is in the audit trail. uvicorn's own 400 for what
llhttp cannot parse counts as ``malformed_request``.
"""

import asyncio
import asyncio.sslproto
import logging
import ssl
from typing import Any, ClassVar, cast

import httptools
import uvloop
import uvloop.loop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from ..observability import Metrics
from ..settings import ServerSettings
from .connection import CONNECTION_EXTENSION, SocketConnection, reset_on_close
from .tls import TLS_EXTENSION, tls_extension

log = logging.getLogger(__name__)

CLOSE_GRACE_S = 2.0
"""How long a closing connection may take: a refusal to be read before the reset, a TLS
close_notify to be answered (uvloop would wait 30 s for a client that never answers)."""
LINE_OVERHEAD = len(b"GET  HTTP/1.1\r\n")
"""A request line's bytes besides its target, for the method the protocol uses."""
END_OF_HEAD = len(b"\r\n")


class _LimitExceededError(Exception):
    """Raised inside a parser callback; httptools hands it back as the parse error's context."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


class ConnectionGate:
    """Counts the open connections of one server; shared by its protocol instances."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def admit(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1


def handshake_failure(error: BaseException | None) -> str:
    """A failed handshake's reason, as a bounded metric label."""
    if error is None or isinstance(error, TimeoutError | asyncio.CancelledError):
        return "timeout"
    if isinstance(error, ssl.SSLCertVerificationError):
        return "client_certificate_refused"
    text = str(error).upper()
    if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in text or "CERTIFICATE_REQUIRED" in text:
        return "client_certificate_missing"
    if any(word in text for word in ("UNSUPPORTED_PROTOCOL", "WRONG_VERSION", "NO_PROTOCOLS")):
        return "protocol_version"
    if "CERTIFICATE" in text:  # unknown CA, expired, bad usage: OpenSSL's alert names
        return "client_certificate_refused"
    return "other"


def _tls_protocol_class(loop: asyncio.AbstractEventLoop) -> Any:
    """The TLS protocol of ``loop``'s implementation (uvloop's, else asyncio's); both take
    (loop, app_protocol, sslcontext, waiter, server_side, ...)."""
    if isinstance(loop, uvloop.Loop):
        return uvloop.loop.SSLProtocol  # type: ignore[attr-defined]  # not in uvloop's stubs
    return asyncio.sslproto.SSLProtocol


class _EndOfStreamTap(asyncio.BufferedProtocol):
    """Sits between the TCP transport and the TLS protocol to see the client's FIN.

    The TLS layer treats a bare TCP EOF as the end and closes the socket without telling
    the HTTP protocol; the moment matters, because only while the socket is open can the
    kernel say how much the client had acknowledged when it closed."""

    def __init__(self, tls: Any, on_eof: Any) -> None:
        self._tls = tls
        self._on_eof = on_eof

    def get_buffer(self, sizehint: int) -> Any:
        return self._tls.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self._tls.buffer_updated(nbytes)

    def eof_received(self) -> bool | None:
        self._on_eof()
        result: bool | None = self._tls.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._tls.connection_lost(exc)

    def pause_writing(self) -> None:
        self._tls.pause_writing()

    def resume_writing(self) -> None:
        self._tls.resume_writing()


def _plain_response(status: int, message: str) -> bytes:
    body = message.encode("ascii") + b"\n"
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Bound to its settings by ``protocol_class``; uvicorn makes one per connection."""

    limits: ClassVar[ServerSettings]
    metrics: ClassVar[Metrics]
    tls_context: ClassVar[ssl.SSLContext | None]
    gate: ClassVar[ConnectionGate]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn types its keep-alive timeout as int; call_later takes the float as it is.
        self.timeout_keep_alive = self.limits.keep_alive_timeout_s  # type: ignore[assignment]
        self._raw: asyncio.Transport | None = None
        self._admitted = False
        self._released = False
        self._http_started = False
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._connection: SocketConnection | None = None
        self._extensions: dict[str, Any] = {}
        self._max_head_bytes = (
            self.limits.max_request_line_bytes + self.limits.max_header_bytes + END_OF_HEAD
        )
        self._reset_head()

    # -- connection life -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self._raw is not None:  # the TLS layer hands over its transport: handshake done
            self._start_http(transport)
            return
        self._raw = transport
        if not self.gate.admit():
            self.metrics.http_refused.inc(reason="too_many_connections")
            reset_on_close(transport.get_extra_info("socket"))
            transport.abort()
            return
        self._admitted = True
        self._deadline = self.loop.call_later(
            self.limits.header_timeout_s, self._header_deadline_passed
        )
        if self.tls_context is None:
            self._start_http(transport)
        else:
            self._wrap_in_tls(transport, self.tls_context)

    def _wrap_in_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        """Put the TLS protocol between ``raw`` and this one, now: the transport starts
        reading as soon as ``connection_made`` returns, and the ClientHello must reach TLS.
        This is what uvloop's listener does at accept, with our handshake deadline; the TLS
        protocol calls ``connection_made`` again with its own transport once it is done."""
        handshake: asyncio.Future[None] = self.loop.create_future()
        tls = _tls_protocol_class(self.loop)(
            self.loop,
            self,
            context,
            handshake,
            server_side=True,
            # a backstop only: the header deadline (armed above) ends a slow handshake first
            ssl_handshake_timeout=2 * self.limits.header_timeout_s,
            ssl_shutdown_timeout=CLOSE_GRACE_S,
        )
        raw.set_protocol(_EndOfStreamTap(tls, self._peer_closed))
        tls.connection_made(raw)
        handshake.add_done_callback(self._handshake_ended)

    def _handshake_ended(self, handshake: asyncio.Future[None]) -> None:
        # Failed, timed out, or the client left during the handshake (then TLS reports
        # success without ever handing over a transport): nothing more to do but forget it.
        error = None if handshake.cancelled() else handshake.exception()
        failed = handshake.cancelled() or error is not None
        if failed:
            reason = handshake_failure(error)
            self.metrics.tls_handshake_failures.inc(reason=reason)
            if reason.startswith("client_certificate"):  # who was turned away, and why
                peer = self._raw.get_extra_info("peername") if self._raw else None
                log.warning(
                    "TLS handshake refused (%s) from %s: %s",
                    reason, peer[0] if peer else "?", error,
                )  # fmt: skip
        if failed or not self._http_started:
            self._release()
            self._cancel_deadline()
            if self._raw is not None:
                self._raw.abort()

    def _start_http(self, transport: asyncio.Transport) -> None:
        if self._raw is None:
            raise RuntimeError("HTTP started before the connection was made")
        self._connection = SocketConnection(transport, self._raw, self._mark_aborted)
        # Read once per connection: every request on it shares the same handshake.
        self._extensions = {CONNECTION_EXTENSION: self._connection}
        tls = tls_extension(transport.get_extra_info("ssl_object"))
        if tls is not None:
            self._extensions[TLS_EXTENSION] = tls
        self._http_started = True
        super().connection_made(transport)

    def eof_received(self) -> None:
        self._peer_closed()
        super().eof_received()

    def _peer_closed(self) -> None:
        if self._connection is not None:
            self._connection.peer_closed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        self._cancel_deadline()
        if self._connection is not None:
            self._connection.connection_lost()
        if self._http_started:
            super().connection_lost(exc)

    def _release(self) -> None:
        if self._admitted and not self._released:
            self._released = True
            self.gate.release()

    def _mark_aborted(self) -> None:
        """The app aborts the connection: the response is over, and uvicorn should not
        complain that the app returned without completing it."""
        if self.cycle is not None:
            self.cycle.disconnected = True

    def _reset_now(self) -> None:
        if self._raw is not None and not self._released:
            reset_on_close(self._raw.get_extra_info("socket"))
            if self._http_started:
                self._mark_aborted()
                self.transport.abort()
            else:
                self._raw.abort()

    # -- request heads -----------------------------------------------------------------------
    def _reset_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._url_bytes = 0
        self._header_count = 0
        self._header_line_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        view = memoryview(data)
        while view:
            # Never feed more than a whole allowed head at once. Within a head that bounds
            # what llhttp and httptools ever hold; after a request ends inside a piece, the
            # rest of the piece goes uncounted, and this bounds that too.
            room = (
                self._max_head_bytes - self._head_bytes if self._in_head else self._max_head_bytes
            )
            piece, view = view[:room], view[room:]
            if self._in_head:
                self._head_bytes += len(piece)  # a head that ends inside resets this
            if not self._feed(piece):
                return
            if self._in_head and self._head_is_full():
                self._refuse(431, "request headers too large", "header_too_large")
                return

    def _head_is_full(self) -> bool:
        """The head is still open and cannot end within the limits any more.

        Counted from raw bytes, before the parser has whole header lines; ``on_header``
        checks the exact sum of the lines the parser completed."""
        header_bytes = self._head_bytes - self._url_bytes - LINE_OVERHEAD
        return (
            header_bytes >= self.limits.max_header_bytes + END_OF_HEAD
            or self._head_bytes >= self._max_head_bytes
        )

    def _feed(self, piece: memoryview) -> bool:
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserCallbackError as exc:
            limit = exc.__context__
            if isinstance(limit, _LimitExceededError):
                self._refuse(limit.status, limit.message, limit.reason)
            else:
                self._malformed()
            return False
        except httptools.HttpParserError:
            self._malformed()
            return False
        except httptools.HttpParserUpgrade:
            self.logger.warning("Unsupported upgrade request.")  # no WebSockets here (ws="none")
            return False
        return True

    def _malformed(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def send_400_response(self, msg: str) -> None:
        self.metrics.http_refused.inc(reason="malformed_request")
        self._refused = True
        self._cancel_deadline()
        super().send_400_response(msg)
        self.loop.call_later(CLOSE_GRACE_S, self._reset_now)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the first byte of a later request
            self._deadline = self.loop.call_later(
                self.limits.header_timeout_s, self._header_deadline_passed
            )
        scope = cast(dict[str, Any], self.scope)
        scope["extensions"] = dict(self._extensions)  # a request's own: the app may add

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes + LINE_OVERHEAD > self.limits.max_request_line_bytes:
            raise _LimitExceededError(414, "request line too long", "request_line_too_long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise _LimitExceededError(431, "too many request headers", "too_many_headers")
        self._header_line_bytes += len(name) + len(value) + len(b": \r\n")
        if self._header_line_bytes > self.limits.max_header_bytes:
            raise _LimitExceededError(431, "request headers too large", "header_too_large")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_deadline()  # the whole request is in (a GET has nothing after its head)
        super().on_message_complete()
        self._reset_head()  # the next request's head starts here

    # -- refusals ------------------------------------------------------------------------------
    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_deadline_passed(self) -> None:
        self._deadline = None
        if not self._http_started:  # still in the TLS handshake
            self.metrics.http_refused.inc(reason="header_timeout")
            self._reset_now()
            return
        self._refuse(408, "request headers not received in time", "header_timeout")

    def _refuse(self, status: int, message: str, reason: str) -> None:
        """Answer ``status`` with a one-line reason and close; reset if the client lingers."""
        self._refused = True
        self.metrics.http_refused.inc(reason=reason)
        self._cancel_deadline()
        log.info("refused %s: %s (%s)", self.client, message, reason)
        if self.cycle is not None and not self.cycle.response_complete:
            self._reset_now()  # a response is under way: no second one on this connection
            return
        self.flow.pause_reading()
        self.transport.write(_plain_response(status, message))
        self.transport.close()
        self.loop.call_later(CLOSE_GRACE_S, self._reset_now)


def protocol_class(
    limits: ServerSettings, metrics: Metrics, tls_context: ssl.SSLContext | None
) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for uvicorn's ``http=``, bound to one server's settings.

    ``tls_context`` None serves plain HTTP (``tls.plain_http``)."""
    server_limits, server_metrics, server_tls = limits, metrics, tls_context

    class BoundHttpToolsProtocol(LimitedHttpToolsProtocol):
        limits = server_limits
        metrics = server_metrics
        tls_context = server_tls
        gate = ConnectionGate(server_limits.max_connections)

    return BoundHttpToolsProtocol
