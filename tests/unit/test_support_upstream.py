"""Self-tests for tests/support/upstream.py: serving, access log and misbehaviour."""

from __future__ import annotations

import http.client
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.upstream import UpstreamServer

ZIP = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamServer]:
    root = tmp_path / "root"
    (root / "example.com/hello/@v").mkdir(parents=True)
    (root / "example.com/hello/@v/list").write_text("v1.0.0\n")
    (root / "example.com/hello/@v/v1.0.0.zip").write_bytes(ZIP)
    (root / "example.com/!upper/@v").mkdir(parents=True)
    (root / "example.com/!upper/@v/list").write_text("v1.0.0\n")
    (root / "sumdb/sum.example.com").mkdir(parents=True)
    (root / "sumdb/sum.example.com/supported").write_bytes(b"")
    (tmp_path / "secret.txt").write_text("outside root\n")
    with UpstreamServer(root) as server:
        yield server


def raw_get(server: UpstreamServer, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte-for-byte (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", target)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_sync_get_and_access_log(upstream: UpstreamServer) -> None:
    with urllib.request.urlopen(upstream.url + "/example.com/hello/@v/list", timeout=5) as r:
        assert r.read() == b"v1.0.0\n"
    assert upstream.paths() == ["/example.com/hello/@v/list"]
    rec = upstream.requests[0]
    assert rec.method == "GET" and rec.headers["Host"] == f"127.0.0.1:{upstream.port}"


def test_percent_decoding_traversal_and_404(upstream: UpstreamServer) -> None:
    assert raw_get(upstream, "/example.com/%21upper/@v/list") == (200, b"v1.0.0\n")
    assert raw_get(upstream, "/example.com/!upper/@v/list") == (200, b"v1.0.0\n")
    assert raw_get(upstream, "/sumdb/sum.example.com/supported") == (200, b"")
    for target in ["/../secret.txt", "/%2e%2e/secret.txt", "/example.com/..%2f..%2fsecret.txt"]:
        status, _ = raw_get(upstream, target)
        assert status == 404, target
    status, body = raw_get(upstream, "/example.com/nope/@v/list")
    assert status == 404 and b"not found" in body
    assert "/example.com/%21upper/@v/list" in upstream.paths()  # logged raw, not decoded


async def test_async_keepalive_and_fail_with_status(upstream: UpstreamServer) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # keep-alive reuse works
            async with session.get(upstream.url + "/example.com/hello/@v/v1.0.0.zip") as r:
                assert r.status == 200 and await r.read() == ZIP
        async with session.get(upstream.url + "/missing") as r:
            assert r.status == 404 and r.content_type == "text/plain"
        upstream.fail_with_status(503)
        async with session.get(upstream.url + "/example.com/hello/@v/list") as r:
            assert r.status == 503 and "503" in await r.text()
        upstream.fail_with_status(None)
        async with session.get(upstream.url + "/example.com/hello/@v/list") as r:
            assert r.status == 200


async def test_reset_connections(upstream: UpstreamServer) -> None:
    upstream.reset_connections = True
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(upstream.url + "/example.com/hello/@v/list") as r:
                await r.read()
    assert upstream.paths()[-1] == "/example.com/hello/@v/list"  # it did reach upstream


async def test_truncate_body_after(upstream: UpstreamServer) -> None:
    upstream.truncate_body_after = 1000
    url = upstream.url + "/example.com/hello/@v/v1.0.0.zip"
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        assert r.status == 200 and r.content_length == len(ZIP)
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()


async def test_chunked_body_whole_and_truncated(upstream: UpstreamServer) -> None:
    upstream.chunked = True
    url = upstream.url + "/example.com/hello/@v/v1.0.0.zip"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as r:
            assert r.headers["Transfer-Encoding"] == "chunked" and r.content_length is None
            assert await r.read() == ZIP
        upstream.truncate_body_after = 1000
        async with session.get(url) as r:
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()


async def test_stall_body_before_breaking_off(upstream: UpstreamServer) -> None:
    upstream.truncate_body_after, upstream.stall_body_s = 1000, 0.5
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    url = upstream.url + "/example.com/hello/@v/v1.0.0.zip"
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as r:
        assert await r.content.readexactly(1000) == ZIP[:1000]
        with pytest.raises(TimeoutError):
            await r.read()


async def test_delay(upstream: UpstreamServer) -> None:
    upstream.delay_s = 0.5
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            async with session.get(upstream.url + "/example.com/hello/@v/list") as r:
                await r.read()
        assert time.monotonic() - start < 0.45


def test_stop_is_fast_with_idle_keepalive(tmp_path: Path) -> None:
    server = UpstreamServer(tmp_path).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", "/x")
        conn.getresponse().read()  # connection stays open (keep-alive)
        start = time.monotonic()
        server.stop()
        assert time.monotonic() - start < 2
    finally:
        conn.close()
