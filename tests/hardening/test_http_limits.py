"""Limits on the client-facing HTTP layer: request line and header size and count, a deadline
for a request's headers (TLS handshake included), idle keep-alive, open connections.

The behaviour is tested against `modgate serve` over TLS (small limits set in its
environment). That the refusals are counted in ``modgate_http_refused_total`` is tested on
the same uvicorn server configuration run in a thread of the test process
(``gateway.server.uvicorn_config``), where the ``Metrics`` object can be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from gateway.app import build_app
from gateway.certs import DevPki
from gateway.observability import Metrics
from gateway.server import uvicorn_config
from gateway.settings import (
    AuditSettings,
    IdentitySettings,
    PolicySettings,
    ServerSettings,
    Settings,
    TlsSettings,
    UpstreamSettings,
)
from tests.conftest import Tokens, gateway_env
from tests.support.gateway import GatewayProcess
from tests.support.opa import OpaServer
from tests.support.ports import free_port
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

MIB = 1024 * 1024
HEADER_TIMEOUT_S = 1.5
KEEP_ALIVE_TIMEOUT_S = 1.0
MAX_REQUEST_LINE_BYTES = 2048
MAX_HEADER_BYTES = 8192
MAX_HEADERS = 40
MAX_CONNECTIONS = 3
MARGIN_S = 1.5
LIMITS = {
    "MODGATE_SERVER_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    "MODGATE_SERVER_KEEP_ALIVE_TIMEOUT_S": str(KEEP_ALIVE_TIMEOUT_S),
    "MODGATE_SERVER_MAX_REQUEST_LINE_BYTES": str(MAX_REQUEST_LINE_BYTES),
    "MODGATE_SERVER_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    "MODGATE_SERVER_MAX_HEADERS": str(MAX_HEADERS),
}


def start_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
    limits: dict[str, str],
) -> GatewayProcess:
    env = {**gateway_env(pki, postgres, opa_server.url, public_upstream.url, ""), **limits}
    log = tmp_path_factory.mktemp("limited-gateway") / "modgate.log"
    return GatewayProcess(env, pki.ca_cert, log).start()


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory, pki, postgres, opa_server, public_upstream, LIMITS)
    yield process
    process.stop()


# -- a raw client: bytes exactly as written, over TLS ------------------------------------------


def connect(port: int, context: ssl.SSLContext, timeout_s: float = 10) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes (an abort counts as a close)."""
    data = b""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def exchange(port: int, context: ssl.SSLContext, request: bytes) -> bytes:
    """Send ``request`` as is and return everything answered until the server closes."""
    with connect(port, context) as tls:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            tls.sendall(request)
        return read_until_closed(tls)


def status_of(answer: bytes) -> int:
    line = answer.split(b"\r\n", 1)[0]
    if not line.startswith(b"HTTP/1.1 "):
        raise AssertionError(f"not an HTTP answer: {answer[:200]!r}")
    return int(line.split()[1])


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One response (head and Content-Length body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed mid-response: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return status_of(head), body


def seconds_until_closed(sock: socket.socket, at_most_s: float) -> float:
    """Seconds until the server closes ``sock`` (reading whatever it sends meanwhile)."""
    start = time.monotonic()
    sock.settimeout(at_most_s)
    try:
        read_until_closed(sock)
    except TimeoutError:
        return float("inf")
    return time.monotonic() - start


def seconds_until_refused(port: int, at_most_s: float = 5) -> float:
    """Connect and wait for the server to close; a reset that beats connect() counts as 0 s."""
    start = time.monotonic()
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=at_most_s)
    except ConnectionError:
        return time.monotonic() - start
    with raw:
        return seconds_until_closed(raw, at_most_s)


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: modgate\r\n\r\n"


# -- sizes -------------------------------------------------------------------------------------


def test_over_long_request_line_is_answered_414(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    path = b"/example.com/" + b"a" * MAX_REQUEST_LINE_BYTES
    answer = exchange(limited.port, tls_context, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(answer) == 414


def test_request_line_just_within_the_limit_is_served(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    line_overhead = len(b"GET  HTTP/1.1\r\n")
    path = b"/healthz?" + b"a" * (MAX_REQUEST_LINE_BYTES - line_overhead - len(b"/healthz?"))
    answer = exchange(
        limited.port, tls_context, b"GET " + path + b" HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    assert status_of(answer) == 200


def test_too_many_headers_are_answered_431(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(MAX_HEADERS + 1))
    answer = exchange(limited.port, tls_context, b"GET /healthz HTTP/1.1\r\n" + headers + b"\r\n")
    assert status_of(answer) == 431


def test_headers_over_the_byte_limit_are_answered_431(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    big = b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n"
    answer = exchange(limited.port, tls_context, b"GET /healthz HTTP/1.1\r\n" + big + b"\r\n")
    assert status_of(answer) == 431


def test_headers_just_within_the_byte_limit_are_served(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    fixed = b"Connection: close\r\n"
    filler = MAX_HEADER_BYTES - len(fixed) - len(b"X-Big: \r\n")
    head = b"GET /healthz HTTP/1.1\r\n" + fixed + b"X-Big: " + b"a" * filler + b"\r\n\r\n"
    assert status_of(exchange(limited.port, tls_context, head)) == 200


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


async def flood_one_header(port: int, context: ssl.SSLContext, total: int) -> tuple[int, bytes]:
    """Send a request whose one header is ``total`` bytes, as fast as the socket takes it.

    Returns how many bytes the server let the client write, and what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    answer = asyncio.ensure_future(reader.read(4096))
    sent = 0
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: ")
        piece = b"a" * (256 * 1024)
        while sent < total and not answer.done():
            writer.write(piece)
            await asyncio.wait_for(writer.drain(), timeout=20)
            sent += len(piece)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await asyncio.wait_for(asyncio.shield(answer), timeout=20)
    except (ConnectionError, ssl.SSLError):
        pass  # the server cut the connection while we were still writing
    except TimeoutError:
        pass  # the server stopped reading and never answered: the asserts below say so
    finally:
        writer.transport.abort()
    first = answer.result() if answer.done() and not answer.exception() else b""
    return sent, first


def test_64_mib_headers_are_cut_off_early_with_flat_memory_and_others_served(
    limited: GatewayProcess, tls_context: ssl.SSLContext, tokens: Tokens
) -> None:
    # given a gateway that has served a request (every code path warm)
    auth = {"Authorization": f"Bearer {tokens.alice}"}
    with httpx.Client(base_url=limited.url, verify=tls_context, timeout=10) as client:
        assert client.get("/example.com/hello/@v/list", headers=auth).status_code == 200
    peak_before = vm_kib(limited.pid, "VmHWM")
    served: list[int | str] = []

    def legitimate_requests() -> None:
        with httpx.Client(base_url=limited.url, verify=tls_context, timeout=10) as client:
            for _ in range(5):
                try:
                    reply = client.get("/example.com/hello/@v/list", headers=auth)
                except httpx.HTTPError as exc:
                    served.append(type(exc).__name__)
                else:
                    served.append(reply.status_code)
                time.sleep(0.1)

    # when eight clients each send a request with a 64 MiB header, all at once
    async def floods() -> list[tuple[int, bytes]]:
        return await asyncio.gather(
            *(flood_one_header(limited.port, tls_context, 64 * MIB) for _ in range(8))
        )

    other = threading.Thread(target=legitimate_requests)
    other.start()
    results = asyncio.run(floods())
    other.join(timeout=30)
    # then each is refused with 431 (or just cut off) long before 64 MiB were taken
    for sent, first in results:
        assert sent < 16 * MIB, "the gateway kept reading a 64 MiB header"
        assert first == b"" or status_of(first) == 431
    assert any(first for _, first in results), "no flood was answered 431"
    # and the gateway's peak memory stays flat, and other callers were served meanwhile
    growth_kib = vm_kib(limited.pid, "VmHWM") - peak_before
    assert growth_kib < 8 * 1024, f"peak RSS grew by {growth_kib / 1024:.1f} MiB"
    assert served == [200] * 5


def test_malformed_request_lines_are_answered_400_by_the_parser(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    for line in (b"GET /a b HTTP/1.1", b"GET /a\x01b HTTP/1.1"):
        answer = exchange(limited.port, tls_context, line + b"\r\nHost: x\r\n\r\n")
        assert status_of(answer) == 400, line


# -- time --------------------------------------------------------------------------------------


def test_client_trickling_its_headers_is_cut_off_at_the_header_deadline(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    # given a client that sends its request line, then one header byte every 0.2 s
    with connect(limited.port, tls_context) as tls:
        start = time.monotonic()
        tls.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        tls.settimeout(0.2)
        while time.monotonic() - start < HEADER_TIMEOUT_S + MARGIN_S + 3:
            try:
                tls.sendall(b"X")
                if tls.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                closed = True
                break
            else:
                closed = True  # the server answered (408) and will close
                break
        elapsed = time.monotonic() - start
    # then the gateway ends the connection at the header deadline, however it trickles
    assert closed and elapsed < HEADER_TIMEOUT_S + MARGIN_S, f"still open after {elapsed:.1f} s"


def test_client_trickling_a_request_body_is_cut_off_at_the_same_deadline(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    # given a request announcing a body (the proxy protocol has none), then one byte a 0.2 s
    with connect(limited.port, tls_context) as tls:
        start = time.monotonic()
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        tls.settimeout(0.2)
        closed = False
        while not closed and time.monotonic() - start < HEADER_TIMEOUT_S + MARGIN_S + 3:
            try:
                tls.sendall(b"X")
                closed = tls.recv(65536) == b""  # the answer to /healthz comes first
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                closed = True
        elapsed = time.monotonic() - start
    # then the connection ends at the deadline instead of living as long as bytes trickle
    assert closed and elapsed < HEADER_TIMEOUT_S + MARGIN_S, f"still open after {elapsed:.1f} s"


def test_client_that_sends_nothing_after_the_handshake_is_cut_off(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    with connect(limited.port, tls_context) as tls:
        elapsed = seconds_until_closed(tls, HEADER_TIMEOUT_S + MARGIN_S + 3)
    assert elapsed < HEADER_TIMEOUT_S + MARGIN_S


def test_client_that_never_starts_the_tls_handshake_is_cut_off(limited: GatewayProcess) -> None:
    with socket.create_connection(("127.0.0.1", limited.port), timeout=10) as raw:
        elapsed = seconds_until_closed(raw, HEADER_TIMEOUT_S + MARGIN_S + 3)
    assert elapsed < HEADER_TIMEOUT_S + MARGIN_S


def test_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    limited: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    with connect(limited.port, tls_context) as tls:
        tls.sendall(HEALTHZ)
        tls.settimeout(5)
        assert read_response(tls) == (200, b"ok\n")
        # a second request shortly after is still served on the same connection
        time.sleep(KEEP_ALIVE_TIMEOUT_S / 3)
        tls.sendall(HEALTHZ)
        assert read_response(tls) == (200, b"ok\n")
        elapsed = seconds_until_closed(tls, KEEP_ALIVE_TIMEOUT_S + MARGIN_S + 4)
    assert elapsed < KEEP_ALIVE_TIMEOUT_S + MARGIN_S


# -- connections -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def few_connections(
    tmp_path_factory: pytest.TempPathFactory,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
) -> Iterator[GatewayProcess]:
    limits = {
        "MODGATE_SERVER_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "MODGATE_SERVER_HEADER_TIMEOUT_S": "20",
        "MODGATE_SERVER_KEEP_ALIVE_TIMEOUT_S": "20",
    }
    process = start_gateway(tmp_path_factory, pki, postgres, opa_server, public_upstream, limits)
    yield process
    process.stop()


def test_connection_beyond_max_connections_is_closed_at_once_and_the_others_stay_usable(
    few_connections: GatewayProcess, tls_context: ssl.SSLContext
) -> None:
    port = few_connections.port
    # given MAX_CONNECTIONS open connections
    held = [connect(port, tls_context) for _ in range(MAX_CONNECTIONS)]
    try:
        # when one more connects, then it is closed at once (before or at the handshake)
        assert seconds_until_refused(port) < 1.0
        # and the ones held are still served
        for tls in held:
            tls.sendall(HEALTHZ)
            tls.settimeout(5)
            assert read_response(tls) == (200, b"ok\n")
    finally:
        for tls in held:
            tls.close()
    # and once they are gone, new connections are accepted again
    deadline = time.monotonic() + 5
    while True:
        try:
            assert (
                status_of(exchange(port, tls_context, HEALTHZ[:-2] + b"Connection: close\r\n\r\n"))
                == 200
            )
            break
        except (ConnectionError, ssl.SSLError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# -- counting, on the same server configuration in a thread -------------------------------------


class ServerThread:
    """The server `modgate serve` runs (same uvicorn config and protocol), in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.metrics = Metrics()
        self.port = settings.server.port
        app = build_app(settings, self.metrics)
        self.server = uvicorn.Server(uvicorn_config(settings, app, self.metrics))
        self.thread = threading.Thread(target=self.server.run, name="modgate-server")

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server thread did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def in_thread(
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
) -> Iterator[ServerThread]:
    settings = Settings(
        server=ServerSettings(
            port=free_port(),
            max_connections=MAX_CONNECTIONS,
            header_timeout_s=HEADER_TIMEOUT_S,
            keep_alive_timeout_s=KEEP_ALIVE_TIMEOUT_S,
            max_request_line_bytes=MAX_REQUEST_LINE_BYTES,
            max_header_bytes=MAX_HEADER_BYTES,
            max_headers=MAX_HEADERS,
        ),
        tls=TlsSettings(cert_file=str(pki.server_cert), key_file=str(pki.server_key)),
        identity=IdentitySettings(token_cache_s=0),
        policy=PolicySettings(opa_url=opa_server.url),
        audit=AuditSettings(database_url=postgres.dsn()),
        upstream=UpstreamSettings(public=(public_upstream.url,)),
    )
    with ServerThread(settings) as server:
        yield server


def too_many_connections(port: int, context: ssl.SSLContext) -> None:
    held = [connect(port, context) for _ in range(MAX_CONNECTIONS)]
    try:
        seconds_until_refused(port)
    finally:
        for tls in held:
            tls.close()


def silent_client(port: int, _context: ssl.SSLContext) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        seconds_until_closed(raw, HEADER_TIMEOUT_S + MARGIN_S + 3)


def sender(request: bytes) -> Callable[[int, ssl.SSLContext], None]:
    def send(port: int, context: ssl.SSLContext) -> None:
        exchange(port, context, request)

    return send


@pytest.mark.parametrize(
    ("refusal", "reason"),
    [
        (sender(b"GET /a b HTTP/1.1\r\n\r\n"), "malformed_request"),
        (sender(b"GET /a\x01b HTTP/1.1\r\n\r\n"), "malformed_request"),
        (
            sender(b"GET /" + b"a" * MAX_REQUEST_LINE_BYTES + b" HTTP/1.1\r\n\r\n"),
            "request_line_too_long",
        ),
        (
            sender(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n"),
            "header_too_large",
        ),
        (
            sender(b"GET / HTTP/1.1\r\n" + b"X: v\r\n" * (MAX_HEADERS + 1) + b"\r\n"),
            "too_many_headers",
        ),
        (silent_client, "header_timeout"),
        (too_many_connections, "too_many_connections"),
    ],
    ids=[
        "raw-space",
        "control-byte",
        "line",
        "header-bytes",
        "header-count",
        "silent",
        "connections",
    ],
)
def test_each_refusal_of_the_http_layer_is_counted(
    in_thread: ServerThread,
    tls_context: ssl.SSLContext,
    refusal: Callable[[int, ssl.SSLContext], None],
    reason: str,
) -> None:
    counter = in_thread.metrics.http_refused
    before = counter.value(reason=reason)
    refusal(in_thread.port, tls_context)
    deadline = time.monotonic() + 5
    while counter.value(reason=reason) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counter.value(reason=reason) == before + 1


def test_plain_http_demo_mode_has_the_same_limits(
    postgres: ThrowawayPostgres, opa_server: OpaServer, public_upstream: UpstreamServer
) -> None:
    # given the loopback plain-http mode (tls.plain_http), where no TLS layer is in between
    settings = Settings(
        server=ServerSettings(
            port=free_port(), header_timeout_s=HEADER_TIMEOUT_S, max_header_bytes=MAX_HEADER_BYTES
        ),
        tls=TlsSettings(plain_http=True),
        policy=PolicySettings(opa_url=opa_server.url),
        audit=AuditSettings(database_url=postgres.dsn()),
        upstream=UpstreamSettings(public=(public_upstream.url,)),
    )
    with ServerThread(settings) as server:

        def plain(request: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
                raw.sendall(request)
                return read_until_closed(raw)

        # then a normal request is served, an oversized head refused, a silent client cut off
        assert status_of(plain(HEALTHZ[:-2] + b"Connection: close\r\n\r\n")) == 200
        big = b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n"
        assert status_of(plain(b"GET /healthz HTTP/1.1\r\n" + big + b"\r\n")) == 431
        assert seconds_until_refused(server.port, HEADER_TIMEOUT_S + MARGIN_S + 3) < (
            HEADER_TIMEOUT_S + MARGIN_S
        )
    refused = server.metrics.http_refused
    assert (refused.value(reason="header_too_large"), refused.value(reason="header_timeout")) == (
        1,
        1,
    )
