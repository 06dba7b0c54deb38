"""A real HTTP server on 127.0.0.1 playing an upstream Go module proxy (or checksum DB).

It serves a directory tree (see `gomodules.write_proxy_tree`; sumdb files such as
`sumdb/<name>/supported`, `sumdb/<name>/lookup/...` and `.../tile/...` are plain files
placed by tests), records every request it receives, and can misbehave on demand:
fixed error status, delay, connection reset, truncated (or stalled) body, chunked bodies,
a redirect elsewhere, a body trickled one byte at a time. It runs in a background thread,
so sync and async tests can both use it; with an ``ssl.SSLContext`` it speaks https.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the upstream received it."""

    method: str
    path: str  # raw request target, exactly as received (still percent-encoded)
    headers: dict[str, str] = field(default_factory=dict)


def _content_type(name: str) -> str:
    if name.endswith(".info") or name == "@latest":
        return "application/json"
    if name.endswith(".zip"):
        return "application/zip"
    return "text/plain; charset=utf-8"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: UpstreamServer) -> None:
        self.upstream = upstream
        self._open: set[socket.socket] = set()
        self._abort: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def abort(self, request: socket.socket) -> None:
        """Close `request` with a TCP RST instead of an orderly shutdown."""
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._lock:
            self._abort.add(request)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
            aborted = request in self._abort
            self._abort.discard(request)
        if aborted:
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away (e.g. it timed out during `delay_s`)
        super().handle_error(request, client_address)

    def drop_open_connections(self) -> None:
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30  # idle keep-alive connections end on their own

    def log_message(self, format: str, *args: Any) -> None:
        pass  # silence the default stderr access log

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _unsupported(self) -> None:
        self.server.upstream._record(self)
        self._send_text(405, "method not allowed\n")

    do_POST = do_PUT = do_DELETE = do_PATCH = _unsupported

    def _send_text(self, status: int, text: str, send_body: bool = True) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _answer(self, send_body: bool) -> None:
        up = self.server.upstream
        up._record(self)
        if up.delay_s:
            time.sleep(up.delay_s)
        if up.reset_connections:
            self.close_connection = True
            self.server.abort(self.connection)
            return
        if up.status is not None:
            self._send_text(up.status, f"upstream configured to fail with {up.status}\n", send_body)
            return
        if up.redirect_to is not None:
            self.send_response(up.redirect_status)
            self.send_header("Location", up.redirect_to.rstrip("/") + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = up.resolve(self.path)
        if target is None:
            self._send_text(404, f"not found: {self.path}\n", send_body)
            return
        data = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", _content_type(target.name))
        if up.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not send_body:
            return
        cut = up.truncate_body_after
        if cut is not None and cut < len(data):
            self._write_body(data[:cut], last=False)
            if up.stall_body_s:
                time.sleep(up.stall_body_s)  # silence mid-body, then break off
            self.close_connection = True  # orderly FIN after N bytes: a short body
            return
        if up.trickle_interval_s:
            for i in range(len(data)):  # each byte alone, so no per-read timeout ever fires
                self.wfile.write(data[i : i + 1])
                time.sleep(up.trickle_interval_s)
            return
        self._write_body(data, last=True)

    def _write_body(self, data: bytes, *, last: bool) -> None:
        """Write ``data`` as is, or in chunks; the terminating chunk only when ``last``."""
        if not self.server.upstream.chunked:
            self.wfile.write(data)
            return
        for start in range(0, len(data), 64 * 1024):
            piece = data[start : start + 64 * 1024]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        if last:
            self.wfile.write(b"0\r\n\r\n")


class UpstreamServer:
    """Serve `root` over HTTP on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, root: Path, ssl_context: ssl.SSLContext | None = None) -> None:
        self.root = Path(root).resolve()
        self.ssl_context = ssl_context
        self.delay_s: float = 0.0
        self.reset_connections: bool = False
        self.truncate_body_after: int | None = None
        self.stall_body_s: float = 0.0  # with truncate_body_after: wait this long first
        self.chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length
        self.status: int | None = None
        self.redirect_to: str | None = None
        """Answer every request with ``redirect_status`` to this base URL + the same path."""
        self.redirect_status: int = 302
        self.trickle_interval_s: float = 0.0
        """Send a served body one byte at a time, this many seconds apart."""
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> UpstreamServer:
        if self._server is not None:
            return self
        self._server = _Server(self)
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="upstream-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.drop_open_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> UpstreamServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("UpstreamServer is not running")
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- misbehaviour ----------------------------------------------------------------
    def fail_with_status(self, code: int | None) -> None:
        """Answer every request with `code` and a text body; None restores normal service."""
        self.status = code

    def behave(self) -> None:
        """Undo all misbehaviour settings."""
        self.status = None
        self.delay_s = 0.0
        self.reset_connections = False
        self.truncate_body_after = None
        self.redirect_to = None
        self.redirect_status = 302
        self.trickle_interval_s = 0.0
        self.stall_body_s = 0.0
        self.chunked = False

    # -- access log --------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def paths(self) -> list[str]:
        """Raw request paths received so far, in order."""
        return [r.path for r in self.requests]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, handler: BaseHTTPRequestHandler) -> None:
        rec = RecordedRequest(handler.command, handler.path, dict(handler.headers.items()))
        with self._lock:
            self._requests.append(rec)

    # -- file mapping ----------------------------------------------------------------------
    def resolve(self, raw_path: str) -> Path | None:
        """Map a raw request path to a file under root, or None (missing or outside root)."""
        path = unquote(urlsplit(raw_path).path)
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
            return None
        target = self.root.joinpath(*parts).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target
