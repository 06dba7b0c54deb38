"""Honest delivery records: the completion of a streamed zip says how many bytes reached the
client and how the delivery ended, and a client can never take a truncated zip for a whole one.

Against `modgate serve` over TLS with real PostgreSQL, OPA and an upstream on 127.0.0.1 that
can break a body off. "Reached the client" means acknowledged by the client's TCP stack: the
clients that read a little and leave fix their receive buffer (SO_RCVBUF) so that how much the
kernel takes on their behalf does not depend on this machine's autotuning.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.certs import DevPki
from tests.conftest import Tokens, gateway_env
from tests.support.audit import completed_row
from tests.support.gateway import GatewayProcess
from tests.support.gomodules import (
    ModuleVersion,
    build_module,
    go_env,
    go_mod_download,
    write_proxy_tree,
)
from tests.support.metrics import scrape
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa, pytest.mark.gocmd]

MIB = 1024 * 1024
BIG, SMALL = "example.com/big", "example.com/small"
CLIENT_RCVBUF = 64 * 1024


@dataclass(frozen=True)
class Zips:
    big: ModuleVersion  # many times what the socket buffers on both sides hold
    small: ModuleVersion  # fits in them: the gateway can write it whole at once
    tree: Path  # both, laid out as a module proxy serves them


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> Zips:
    work = tmp_path_factory.mktemp("delivery-modules")

    def module(path: str, noise_bytes: int) -> ModuleVersion:
        files = {"lib.go": "package x\n", "testdata/noise.txt": os.urandom(noise_bytes).hex()}
        return build_module(work / "src", path, "v1.0.0", files)

    built = Zips(big=module(BIG, 12 * MIB), small=module(SMALL, 600 * 1024), tree=work / "tree")
    assert len(built.big.zip) > 12 * MIB and MIB / 2 < len(built.small.zip) < 2 * MIB
    write_proxy_tree(built.tree, [built.big, built.small])
    return built


@pytest.fixture(scope="module")
def upstream(zips: Zips) -> Iterator[UpstreamServer]:
    with UpstreamServer(zips.tree) as server:
        yield server


@pytest.fixture(autouse=True)
def well_behaved(upstream: UpstreamServer) -> Iterator[None]:
    yield
    upstream.behave()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
) -> Iterator[GatewayProcess]:
    env = gateway_env(pki, postgres, opa_server.url, upstream.url, "")
    env["MODGATE_UPSTREAM_READ_TIMEOUT_S"] = "1"
    log = tmp_path_factory.mktemp("delivery-gateway") / "modgate.log"
    with GatewayProcess(env, pki.ca_cert, log) as process:
        yield process


def zip_path(module: str) -> str:
    return f"/{module}/@v/v1.0.0.zip"


def completion(postgres: ThrowawayPostgres, request_id: str) -> dict[str, Any]:
    return completed_row(postgres.libpq_dsn(), request_id, timeout_s=20)


def read_a_little_then_leave(
    gateway: GatewayProcess, context: ssl.SSLContext, path: str, token: str, body_bytes: int
) -> str:
    """GET ``path``, read the head and ``body_bytes`` of the body, close; the request id."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)  # before connect
    raw.settimeout(10)
    raw.connect(("127.0.0.1", gateway.port))
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        request = f"GET {path} HTTP/1.1\r\nHost: modgate\r\nAuthorization: Bearer {token}\r\n\r\n"
        tls.sendall(request.encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += tls.recv(65536)
        head, body = received.split(b"\r\n\r\n", 1)
        while len(body) < body_bytes:
            body += tls.recv(body_bytes - len(body))
    # closed with data still unread in the kernel: the client's TCP stack resets the connection
    assert head.startswith(b"HTTP/1.1 200 "), head
    headers = dict(
        line.decode().lower().split(": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
    )
    return headers["x-request-id"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_client_that_reads_a_little_of_a_large_zip_is_recorded_as_disconnected(
    gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    zips: Zips,
) -> None:
    # given a zip many times larger than the socket buffers
    size = len(zips.big.zip)
    # when the client reads 64 KiB of it and closes the connection
    request_id = read_a_little_then_leave(
        gateway, tls_context, zip_path(BIG), tokens.alice, 64 * 1024
    )
    # then the completion says so, with the bytes that reached the client and their hash
    row = completion(postgres, request_id)
    assert (row["status"], row["error_code"]) == (499, "client_disconnected")
    assert row["bytes"] < size // 2
    assert row["sha256"] == sha256_hex(zips.big.zip[: row["bytes"]])


def test_client_that_reads_1_kib_of_a_small_zip_is_not_recorded_as_complete(
    gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    zips: Zips,
) -> None:
    # given a zip small enough for the gateway to write it whole into the socket at once
    size = len(zips.small.zip)
    # when the client reads 1 KiB of it and closes the connection
    request_id = read_a_little_then_leave(gateway, tls_context, zip_path(SMALL), tokens.alice, 1024)
    # then the delivery is not recorded as complete
    row = completion(postgres, request_id)
    assert (row["status"], row["error_code"]) == (499, "client_disconnected")
    assert row["bytes"] < size
    assert row["sha256"] == sha256_hex(zips.small.zip[: row["bytes"]])


@pytest.mark.parametrize("module", [BIG, SMALL])
def test_zip_read_to_the_end_is_recorded_complete(
    gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    zips: Zips,
    module: str,
) -> None:
    expected = zips.big.zip if module == BIG else zips.small.zip
    auth = {"Authorization": f"Bearer {tokens.alice}"}
    with (
        httpx.Client(base_url=gateway.url, verify=tls_context, timeout=30) as client,
        client.stream("GET", zip_path(module), headers=auth) as response,
    ):
        body = response.read()
        request_id = response.headers["X-Request-Id"]
    assert body == expected
    row = completion(postgres, request_id)
    assert (row["status"], row["error_code"]) == (200, None)
    assert (row["bytes"], row["sha256"]) == (len(expected), sha256_hex(expected))


def fetch_expecting_a_broken_body(
    gateway: GatewayProcess, context: ssl.SSLContext, token: str, path: str
) -> tuple[httpx.Headers, int, str]:
    """GET ``path`` and read on: the client must see an error, never the end of the body."""
    received = 0
    with (
        httpx.Client(base_url=gateway.url, verify=context, timeout=30) as client,
        client.stream("GET", path, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.TransportError):  # RemoteProtocolError, ReadError: it varies
            for chunk in response.iter_raw():
                received += len(chunk)
        return response.headers, received, response.headers["X-Request-Id"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upstream_breaking_off_a_zip_aborts_the_client_and_records_502(
    gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    upstream: UpstreamServer,
    zips: Zips,
    chunked: bool,
) -> None:
    # given an upstream that stops after 300,000 bytes of a zip (with or without a length)
    size = len(zips.small.zip)
    upstream.chunked, upstream.truncate_body_after = chunked, 300_000
    broken = (
        "modgate_upstream_failures_total",
        (("reason", "body_error"), ("upstream", upstream.url.rstrip("/"))),
    )
    before = scrape(gateway.metrics_url).get(broken, 0)
    # when a client downloads it, then it sees an error, not a short body taken as whole
    headers, received, request_id = fetch_expecting_a_broken_body(
        gateway, tls_context, tokens.alice, zip_path(SMALL)
    )
    if chunked:
        assert "content-length" not in headers and headers["transfer-encoding"] == "chunked"
    else:
        assert headers["content-length"] == str(size)  # the upstream's length is passed on
    assert received <= 300_000
    # and the record says the delivery failed, with what reached the client
    row = completion(postgres, request_id)
    assert (row["status"], row["error_code"]) == (502, "upstream_failed")
    assert row["bytes"] <= 300_000
    assert row["sha256"] == sha256_hex(zips.small.zip[: row["bytes"]])
    # and the metrics count it as a pull that failed at that upstream
    assert scrape(gateway.metrics_url)[broken] - before == 1


def test_upstream_going_silent_mid_zip_aborts_the_client_and_records_504(
    gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    upstream: UpstreamServer,
) -> None:
    # given an upstream that sends 300,000 bytes and then nothing for longer than the
    # gateway's read timeout (1 s here)
    upstream.truncate_body_after, upstream.stall_body_s = 300_000, 3.0
    _, received, request_id = fetch_expecting_a_broken_body(
        gateway, tls_context, tokens.alice, zip_path(SMALL)
    )
    assert received <= 300_000
    row = completion(postgres, request_id)
    assert (row["status"], row["error_code"]) == (504, "upstream_timeout")


def test_go_command_fails_on_a_zip_the_upstream_broke_off(
    gateway: GatewayProcess,
    tokens: Tokens,
    upstream: UpstreamServer,
    tmp_path: Path,
) -> None:
    upstream.truncate_body_after = 300_000
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1:{gateway.port} login alice password {tokens.alice}\n")
    env = go_env(
        GOPROXY=gateway.url,
        NETRC=str(netrc),
        SSL_CERT_FILE=str(gateway.ca_file),
        GONOSUMDB="example.com",
        GOMODCACHE=str(tmp_path / "modcache"),
        GOPATH=str(tmp_path / "gopath"),
        GOCACHE=str(tmp_path / "gocache"),
        GOFLAGS="-modcacherw",
        HOME=str(tmp_path),
    )
    done = go_mod_download(f"{SMALL}@v1.0.0", tmp_path, env)
    assert done.returncode != 0, done.stdout
    assert "unexpected EOF" in done.stdout or "connection reset" in done.stdout, done.stdout
    assert not list((tmp_path / "modcache").rglob("*.zip"))


def test_client_that_stops_reading_mid_zip_is_cut_off_as_too_slow(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    zips: Zips,
) -> None:
    # given a gateway that gives a client 1 s to take the next part of an answer
    env = gateway_env(pki, postgres, opa_server.url, upstream.url, "")
    env["MODGATE_SERVER_SEND_TIMEOUT_S"] = "1"
    with GatewayProcess(env, pki.ca_cert, tmp_path / "modgate.log") as slow_gateway:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
        raw.settimeout(10)
        raw.connect(("127.0.0.1", slow_gateway.port))
        with context_socket(tls_context, raw) as tls:
            request = (
                f"GET {zip_path(BIG)} HTTP/1.1\r\nHost: modgate\r\n"
                f"Authorization: Bearer {tokens.alice}\r\n\r\n"
            )
            tls.sendall(request.encode())
            received = b""
            while b"\r\n\r\n" not in received:
                received += tls.recv(65536)
            request_id = next(
                line.split(b": ", 1)[1].decode()
                for line in received.split(b"\r\n")
                if line.lower().startswith(b"x-request-id: ")
            )
            # when it then stops reading, connection open, for longer than that
            started = time.monotonic()
            row = completion(postgres, request_id)
            waited = time.monotonic() - started
    # then it is cut off and recorded as too slow, with what reached it, in bounded time
    assert (row["status"], row["error_code"]) == (499, "client_too_slow")
    assert row["bytes"] < len(zips.big.zip) // 2
    assert row["sha256"] == sha256_hex(zips.big.zip[: row["bytes"]])
    assert waited < 15


def context_socket(context: ssl.SSLContext, raw: socket.socket) -> ssl.SSLSocket:
    return context.wrap_socket(raw, server_hostname="127.0.0.1")
