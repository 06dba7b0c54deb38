"""/readyz and /metrics against the real server (point 13): details for operators only,
and probing /readyz often costs the upstreams nothing."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Tokens
from tests.hardening.conftest import ServeOwn
from tests.support.gateway import GatewayProcess
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def probe_gateway(serve_own: ServeOwn) -> Iterator[GatewayProcess]:
    with serve_own(MODGATE_UPSTREAM_PROBE_CACHE_S="30") as process:
        yield process


def test_readyz_probes_the_upstreams_at_most_once_per_probe_cache(
    probe_gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
) -> None:
    with httpx.Client(base_url=probe_gateway.url, verify=tls_context, timeout=20) as client:
        public_upstream.clear()
        private_upstream.clear()
        # when anyone asks /readyz fifty times within upstream.probe_cache_s
        answers = [client.get("/readyz") for _ in range(50)]
    # then every answer is the same bare status, and each upstream was probed once
    assert {(a.status_code, a.text) for a in answers} == {(200, "ready\n")}
    assert len(public_upstream.paths()) <= 1
    assert len(private_upstream.paths()) <= 1


def test_readyz_details_are_for_operators_only(
    client: httpx.Client, tokens: Tokens, public_upstream: UpstreamServer
) -> None:
    public_upstream.fail_with_status(None)
    anonymous = client.get("/readyz")
    developer = client.get("/readyz", headers=bearer(tokens.alice))
    forged = client.get("/readyz", headers=bearer("mgt_0000000000000000_" + "0" * 64))
    operator = client.get("/readyz", headers=bearer(tokens.operator))
    assert [a.text for a in (anonymous, developer, forged)] == ["ready\n"] * 3
    assert operator.text == "ready\n"
    assert operator.status_code == anonymous.status_code == 200


def test_metrics_are_for_operators_only(client: httpx.Client, tokens: Tokens) -> None:
    client.get("/example.com/hello/@v/list", headers=bearer(tokens.alice))
    before = counter(client.get("/metrics", headers=bearer(tokens.operator)).text)
    client.get("/example.com/hello/@v/list", headers=bearer(tokens.alice))  # allowed
    client.get("/example.com/hello/@v/list")  # anonymous: refused
    anonymous = client.get("/metrics")
    developer = client.get("/metrics", headers=bearer(tokens.alice))
    operator = client.get("/metrics", headers=bearer(tokens.operator))
    assert (anonymous.status_code, developer.status_code) == (401, 403)
    assert operator.status_code == 200
    assert operator.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'modgate_requests_total{outcome="allow",code=""}' in operator.text
    assert "# TYPE modgate_audit_rows_isolated_total counter" in operator.text
    after = counter(operator.text)
    allowed, refused = 'outcome="allow",code=""', 'outcome="deny",code="authentication_required"'
    assert after[allowed] - before[allowed] == 1  # each answer counted once, as what it was
    assert after[refused] - before.get(refused, 0) == 1


def counter(page: str) -> dict[str, float]:
    """modgate_requests_total's samples by their label text."""
    prefix = "modgate_requests_total{"
    return {
        line[len(prefix) : line.index("}")]: float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith(prefix)
    }
