"""/readyz and /metrics against the real server (point 13): details for operators only,
and probing /readyz often costs the upstreams nothing."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Tokens
from tests.hardening.conftest import ServeOwn
from tests.support.cli import run_modgate
from tests.support.gateway import GatewayProcess
from tests.support.locks import table_locks
from tests.support.metrics import families, samples, scrape
from tests.support.ports import free_port
from tests.support.postgres import ThrowawayPostgres
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


def test_metrics_on_the_main_port_are_for_operators_only(
    gateway: GatewayProcess, client: httpx.Client, tokens: Tokens
) -> None:
    client.get(HELLO_LIST, headers=bearer(tokens.alice))
    before = samples(client.get("/metrics", headers=bearer(tokens.operator)).text)
    client.get(HELLO_LIST, headers=bearer(tokens.alice))  # allowed
    client.get(HELLO_LIST)  # anonymous: refused
    anonymous = client.get("/metrics")
    developer = client.get("/metrics", headers=bearer(tokens.alice))
    operator = client.get("/metrics", headers=bearer(tokens.operator))
    assert (anonymous.status_code, developer.status_code) == (401, 403)
    assert "modgate_" not in anonymous.text + developer.text
    assert operator.status_code == 200
    assert operator.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE modgate_audit_rows_isolated_total counter" in operator.text
    after = samples(operator.text)
    allowed = (
        "modgate_requests_total",
        (("decision", "allow"), ("kind", "list"), ("status", "200")),
    )
    anonymous_refused = (
        "modgate_requests_total",
        (("decision", "deny"), ("kind", "list"), ("status", "401")),
    )
    refused = ("modgate_refusals_total", (("code", "authentication_required"),))
    for key in (allowed, anonymous_refused, refused):  # each answer counted once, as it was
        assert after[key] - before.get(key, 0) == 1, key


def test_the_metrics_listener_serves_the_same_page_without_credentials(
    gateway: GatewayProcess, client: httpx.Client, tokens: Tokens
) -> None:
    # given the metrics listener on loopback (a port of its own, plain http)
    client.get(HELLO_LIST, headers=bearer(tokens.alice))
    # when anyone who can reach it asks, with no token
    page = httpx.get(gateway.metrics_url, timeout=10)
    main = client.get("/metrics", headers=bearer(tokens.operator))
    # then it gets the gateway's own counters: the same families as on the main port
    assert page.status_code == 200
    assert families(page.text) == families(main.text)
    assert samples(page.text)[REVISION] == 1.0
    # and the main port still does not show them to anonymous callers
    assert client.get("/metrics").status_code == 401


def test_the_metrics_listener_can_be_switched_off(
    serve_own: ServeOwn, tls_context: ssl.SSLContext, tokens: Tokens
) -> None:
    with serve_own(MODGATE_METRICS_LISTEN="") as process:
        listen = process.metrics_listen
        with httpx.Client(base_url=process.url, verify=tls_context, timeout=20) as client:
            operator = client.get("/metrics", headers=bearer(tokens.operator))
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{listen}/metrics", timeout=5)
    assert operator.status_code == 200


def test_label_values_stay_bounded_whatever_the_modules_and_subjects(
    gateway: GatewayProcess, client: httpx.Client, tokens: Tokens
) -> None:
    """No module path, subject or request id becomes a label: the number of series does
    not grow with the number of distinct modules asked for, nor of callers."""

    def ask(count: int, prefix: str) -> list[str]:
        ids = []
        for i in range(count):
            token = (tokens.alice, tokens.bob)[i % 2]
            for path in (f"/example.com/{prefix}{i}/@v/list", f"/example.com/{prefix}{i}/@latest"):
                ids.append(client.get(path, headers=bearer(token)).headers["X-Request-Id"])
            ids.append(
                client.get(f"/example.com/{prefix}{i}/@v/v1.0.{i}.mod").headers["X-Request-Id"]
            )
        return ids

    ask(3, "warmup")  # every kind, decision and status these requests produce, once
    before = scrape(gateway.metrics_url)
    ids = ask(25, "distinct")
    page = httpx.get(gateway.metrics_url, timeout=10).text
    after = samples(page)
    assert set(after) == set(before), set(after) ^ set(before)  # the same series, counts grew
    assert (
        after[
            ("modgate_requests_total", (("decision", "allow"), ("kind", "list"), ("status", "404")))
        ]
        > before[
            ("modgate_requests_total", (("decision", "allow"), ("kind", "list"), ("status", "404")))
        ]
    )
    for never in ("example.com", "distinct", "warmup", "alice", "bob", *ids):
        assert never not in page, never


HELLO_LIST = "/example.com/hello/@v/list"
REVISION = ("modgate_policy_info", (("revision", "2026-11-25.1"),))


def test_a_metrics_port_that_cannot_be_bound_stops_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        done = run_modgate(
            "serve",
            cwd=tmp_path,
            env={
                "MODGATE_TLS_PLAIN_HTTP": "true",
                "MODGATE_SERVER_PORT": str(free_port()),
                "MODGATE_POLICY_OPA_URL": "http://127.0.0.1:9",
                "MODGATE_UPSTREAM_PUBLIC": "http://127.0.0.1:9",
                "MODGATE_AUDIT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/audit.db",
                "MODGATE_METRICS_LISTEN": listen,
            },
        )
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        f"modgate: config key metrics.listen: cannot listen on {listen}: "
        "[Errno 98] Address already in use"
    )


def test_upstream_failures_are_counted_by_upstream_and_reason(
    gateway: GatewayProcess,
    client: httpx.Client,
    tokens: Tokens,
    public_upstream: UpstreamServer,
) -> None:
    upstream = public_upstream.url.rstrip("/")
    failed = ("modgate_upstream_failures_total", (("reason", "http_5xx"), ("upstream", upstream)))
    asked = ("modgate_upstream_requests_total", (("upstream", upstream),))
    code = ("modgate_refusals_total", (("code", "upstream_failed"),))
    before = scrape(gateway.metrics_url)
    # given the only public upstream answers 503 to everything
    public_upstream.fail_with_status(503)
    try:
        response = client.get(HELLO_LIST, headers=bearer(tokens.alice))
    finally:
        public_upstream.behave()
    after = scrape(gateway.metrics_url)
    # then the request was refused, and the failure counted against that upstream
    assert response.status_code == 502
    assert after[failed] - before.get(failed, 0) == 1
    assert after[asked] - before[asked] == 1
    assert after[code] - before.get(code, 0) == 1


def test_audit_write_failures_are_counted(
    serve_own: ServeOwn, tls_context: ssl.SSLContext, tokens: Tokens, postgres: ThrowawayPostgres
) -> None:
    with serve_own(MODGATE_AUDIT_TIMEOUT_S="1") as process:
        with (
            httpx.Client(base_url=process.url, verify=tls_context, timeout=20) as client,
            table_locks(postgres.libpq_dsn(), "audit_records"),
        ):
            # given the audit store cannot take records, when a request arrives
            response = client.get(HELLO_LIST, headers=bearer(tokens.alice))
        page = scrape(process.metrics_url)
    # then it is refused, and the rows the store did not take are counted
    assert response.status_code == 503
    assert page[("modgate_audit_write_failures_total", (("reason", "timeout"),))] >= 2
    assert page[("modgate_audit_unrecorded_refusals_total", ())] == 1
    assert page[("modgate_refusals_total", (("code", "audit_unavailable"),))] == 1
    commits = page[("modgate_audit_commit_duration_seconds_count", (("result", "error"),))]
    assert commits >= 2  # the decision, then the refusal: each commit cut off
