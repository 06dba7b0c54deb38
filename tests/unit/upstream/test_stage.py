"""The forward stage: where a typed request goes, and what a buffered answer delivered."""

import hashlib
from collections.abc import AsyncIterator

import pytest

from gateway.errors import PrivateLeakError, UpstreamError
from gateway.goproxy.requests import ModuleRequest, SumdbRequest
from gateway.http.delivery import Delivery
from gateway.settings import UpstreamSettings
from gateway.upstream.forwarder import UpstreamReply
from gateway.upstream.stage import Destination, ForwardStage, open_forwarder

PUBLIC = ("http://public-one.test", "http://public-two.test")
PRIVATE = ("http://private.test",)
SECRET = ModuleRequest("corp.example.com/secret", "zip", "v1.0.0")


@pytest.fixture
async def forward() -> AsyncIterator[ForwardStage]:
    settings = UpstreamSettings(public=PUBLIC, private=PRIVATE)
    async with open_forwarder(settings, send_timeout_s=30) as stage:
        yield stage


async def test_each_route_goes_to_its_own_list(forward: ForwardStage) -> None:
    fine = ModuleRequest("example.com/fine", "list")
    assert forward.destination(fine, "public") == Destination(fine, "public", PUBLIC)
    assert forward.destination(SECRET, "private") == Destination(SECRET, "private", PRIVATE)


async def test_a_private_checksum_lookup_goes_nowhere(forward: ForwardStage) -> None:
    lookup = SumdbRequest("sum.example.org", "lookup", "corp.example.com/secret", "v1.0.0")
    with pytest.raises(PrivateLeakError, match="add its path to GONOSUMDB"):
        forward.destination(lookup, "private")


async def test_a_private_module_without_a_private_upstream_goes_nowhere() -> None:
    async with open_forwarder(UpstreamSettings(public=PUBLIC), send_timeout_s=30) as stage:
        with pytest.raises(UpstreamError, match="no private upstream is set"):
            stage.destination(SECRET, "private")


async def test_a_buffered_answer_delivers_its_whole_body_at_once(forward: ForwardStage) -> None:
    body = b"not found: example.com/fine@v9.9.9"
    reply = UpstreamReply("http://public-one.test", 404, {"Content-Type": "text/plain"}, body)
    delivered: list[Delivery] = []
    response = forward.respond(reply, "rid-1", on_end=delivered.append)
    assert delivered == [Delivery(404, len(body), hashlib.sha256(body).hexdigest())]
    assert (response.status_code, bytes(response.body)) == (404, body)
    assert response.headers["X-Request-Id"] == "rid-1"
    assert response.headers["Content-Type"].startswith("text/plain")


async def test_the_checks_name_only_the_configured_lists(forward: ForwardStage) -> None:
    assert [check.problem for check in forward.checks()] == [
        "no public upstream reachable",
        "no private upstream reachable",
    ]
    async with open_forwarder(UpstreamSettings(public=PUBLIC), send_timeout_s=30) as public:
        assert [check.problem for check in public.checks()] == ["no public upstream reachable"]
