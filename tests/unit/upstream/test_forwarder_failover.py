"""The forwarder against real HTTP upstreams on 127.0.0.1: redirects are failures that are
never followed, and every answer has a deadline however slowly its body trickles."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.errors import UpstreamError, UpstreamTimeoutError
from gateway.upstream.forwarder import Forwarder
from tests.support.upstream import UpstreamServer

MOD_PATH = "example.com/m/@v/v1.0.0.mod"
ZIP_PATH = "example.com/m/@v/v1.0.0.zip"
MOD = b"module example.com/m\n\ngo 1.22\n"
ZIP = bytes(range(256)) * 4


@pytest.fixture
def root(tmp_path: Path) -> Path:
    versions = tmp_path / "root" / "example.com" / "m" / "@v"
    versions.mkdir(parents=True)
    (versions / "v1.0.0.mod").write_bytes(MOD)
    (versions / "v1.0.0.zip").write_bytes(ZIP)
    return tmp_path / "root"


@pytest.fixture
def first(root: Path) -> Iterator[UpstreamServer]:
    with UpstreamServer(root) as server:
        yield server


@pytest.fixture
def second(root: Path) -> Iterator[UpstreamServer]:
    with UpstreamServer(root) as server:
        yield server


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[UpstreamServer]:
    """Where a redirect points: it serves the same paths, so following would succeed."""
    versions = tmp_path / "elsewhere" / "example.com" / "m" / "@v"
    versions.mkdir(parents=True)
    (versions / "v1.0.0.mod").write_bytes(b"module example.com/m // from elsewhere\n")
    with UpstreamServer(tmp_path / "elsewhere") as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as client:
        yield client


def forwarder(session: aiohttp.ClientSession, total_s: float = 30, zip_s: float = 900) -> Forwarder:
    return Forwarder(session, 1.0, 5.0, total_timeout_s=total_s, zip_timeout_s=zip_s)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_is_an_upstream_failure_and_the_next_upstream_answers(
    session: aiohttp.ClientSession,
    first: UpstreamServer,
    second: UpstreamServer,
    elsewhere: UpstreamServer,
    status: int,
) -> None:
    # given a first upstream that redirects to another host
    first.redirect_to, first.redirect_status = elsewhere.url, status
    # when a file is fetched from the list
    reply = await forwarder(session).fetch([first.url, second.url], MOD_PATH, stream=False)
    # then the redirect target is never contacted and the second upstream's answer is used
    assert (reply.upstream, reply.status, reply.body) == (second.url, 200, MOD)
    assert first.paths() == [f"/{MOD_PATH}"]
    assert elsewhere.paths() == []


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
async def test_redirects_from_every_upstream_are_a_502_naming_each(
    session: aiohttp.ClientSession,
    first: UpstreamServer,
    second: UpstreamServer,
    elsewhere: UpstreamServer,
    stream: bool,
) -> None:
    # given two upstreams that both redirect
    first.redirect_to = second.redirect_to = elsewhere.url
    # when a file is fetched, then it fails with both statuses named and no Location shown
    with pytest.raises(UpstreamError) as failed:
        await forwarder(session).fetch([first.url, second.url], ZIP_PATH, stream=stream)
    assert type(failed.value) is UpstreamError and failed.value.status == 502
    assert failed.value.reason == (
        f"no upstream answered ({first.url}: HTTP 302 (redirects are not followed); "
        f"{second.url}: HTTP 302 (redirects are not followed))"
    )
    assert elsewhere.url not in failed.value.reason
    assert elsewhere.paths() == []


async def test_readiness_probe_does_not_follow_a_redirect(
    session: aiohttp.ClientSession, first: UpstreamServer, elsewhere: UpstreamServer
) -> None:
    first.redirect_to = elsewhere.url
    assert await forwarder(session).reachable([first.url])
    assert elsewhere.paths() == []


async def test_buffered_answer_past_its_deadline_moves_on_to_the_next_upstream(
    session: aiohttp.ClientSession, first: UpstreamServer, second: UpstreamServer
) -> None:
    # given a first upstream that trickles the body, each byte well inside the read timeout
    first.trickle_interval_s = 0.2  # the whole .mod would take about 6 s
    # when it is fetched with a 1 s deadline for the whole answer
    started = time.monotonic()
    reply = await forwarder(session, total_s=1).fetch(
        [first.url, second.url], MOD_PATH, stream=False
    )
    # then the second upstream answers, once the first one's deadline has passed
    assert (reply.upstream, reply.body) == (second.url, MOD)
    assert time.monotonic() - started < 5  # not the 6 s the trickle would take


async def test_buffered_answers_all_past_their_deadline_are_a_504(
    session: aiohttp.ClientSession, first: UpstreamServer, second: UpstreamServer
) -> None:
    first.trickle_interval_s = second.trickle_interval_s = 0.2
    with pytest.raises(UpstreamTimeoutError) as timed_out:
        await forwarder(session, total_s=0.5).fetch([first.url, second.url], MOD_PATH, stream=False)
    assert timed_out.value.status == 504
    assert "timeout reading body" in timed_out.value.reason


async def test_streamed_zip_past_its_deadline_raises_upstream_timeout_mid_body(
    session: aiohttp.ClientSession, first: UpstreamServer
) -> None:
    # given an upstream that trickles the zip (headers at once, then a byte every 0.1 s)
    first.trickle_interval_s = 0.1
    # when the zip is streamed with a 1 s deadline for the whole download
    reply = await forwarder(session, zip_s=1).fetch([first.url], ZIP_PATH, stream=True)
    received = 0
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamTimeoutError) as timed_out:
            async for chunk in reply.chunks():
                received += len(chunk)
    finally:
        reply.close()
    # then the stream stops with a timeout well before the whole body came
    assert timed_out.value.code == "upstream_timeout"
    assert 0 < received < len(ZIP)
    assert time.monotonic() - started < 5
