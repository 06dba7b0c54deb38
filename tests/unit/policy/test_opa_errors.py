"""Which PolicyError an OPA failure becomes: "OPA is down" is not "the policy is broken".

The server here stands in for an OPA misbehaving in ways a real one only does when broken
(a real OPA is asked in tests/integration and tests/hardening).
"""

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.errors import PolicyError, PolicyMalformedError, PolicyUnreachableError
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine
from tests.golden.cases import CASES
from tests.support.ports import free_port

ANSWERS = {
    "eval-error": (500, b'{"code":"internal_error","message":"eval_conflict_error"}'),
    "not-found": (404, b"{}"),
    "unavailable": (503, b""),
    "not-json": (200, b"<html>"),
}


@pytest.fixture
async def odd_opa() -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        status, body = ANSWERS[request.match_info["case"]]
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/data/{case}/decision", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("eval-error", PolicyMalformedError, "policy_malformed"),
        ("not-json", PolicyMalformedError, "policy_malformed"),
        ("not-found", PolicyUnreachableError, "policy_unreachable"),
        ("unavailable", PolicyUnreachableError, "policy_unreachable"),
    ],
)
async def test_each_failure_has_its_own_error(
    odd_opa: str, case: str, error: type[PolicyError], code: str
) -> None:
    endpoint = OpaEndpoint.for_url(odd_opa)
    async with OpaPolicyEngine(endpoint, f"{case}/decision", 2, 0) as engine:
        with pytest.raises(error) as refused:
            await engine.decide(CASES["module_zip_token"])
    assert refused.value.code == code


async def test_nobody_listening_is_unreachable() -> None:
    endpoint = OpaEndpoint.for_url(f"http://127.0.0.1:{free_port()}")
    async with OpaPolicyEngine(endpoint, "modgate/decision", 2, 1) as engine:
        with pytest.raises(PolicyUnreachableError, match="unreachable"):
            await engine.decide(CASES["module_zip_token"])
