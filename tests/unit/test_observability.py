"""gateway/observability.py: one registry per application, the adapters the call sites
use, the timers, and the policy wrapper against the real OPA."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import PolicyError
from gateway.goproxy.requests import parse_module_request
from gateway.identity.base import ANONYMOUS
from gateway.observability import Metrics, TimedPolicy, status_label
from gateway.policy.decision import Decision
from gateway.policy.input import PolicyInput
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine
from tests.support.opa import OpaServer
from tests.support.ports import free_port


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_application_counts_into_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.http_refused.inc(reason="header_timeout")
    one.observe_request(kind="zip", decision="allow", status=200, duration_s=0.5)
    assert one.http_refused.value(reason="header_timeout") == 1
    assert two.http_refused.value(reason="header_timeout") == 0
    assert one.requests_completed(kind="zip", decision="allow", status="200") == 1
    assert two.requests_completed(kind="zip", decision="allow", status="200") == 0


def test_an_answer_counted_by_outcome_counts_refusals_by_code() -> None:
    metrics = Metrics()
    metrics.requests.inc(outcome="deny", code="denied_by_policy")
    metrics.requests.inc(outcome="deny", code="denied_by_policy")
    metrics.requests.inc(outcome="allow", code="")  # counted once complete, with its status
    assert metrics.refusals.value(code="denied_by_policy") == 2
    assert metrics.refusals.value(code="") == 0


def test_a_counter_refuses_labels_it_was_not_declared_with() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="modgate_http_refused takes labels"):
        metrics.http_refused.inc(reason="x", module="example.com/hello")
    with pytest.raises(ValueError):
        metrics.auth_rate_limited.inc(subject="alice")


def test_status_labels_are_bounded() -> None:
    assert [status_label(s) for s in (200, 404, 599, 600, 0, 99)] == [
        "200",
        "404",
        "599",
        "other",
        "other",
        "other",
    ]


def test_a_gauge_registered_again_reads_the_new_source() -> None:
    metrics = Metrics()
    metrics.gauge("modgate_audit_queue_rows", "Audit rows waiting.", lambda: 3)
    metrics.gauge("modgate_audit_queue_rows", "Audit rows waiting.", lambda: 7)
    assert value(metrics, "modgate_audit_queue_rows") == 7


def test_an_audit_commit_is_timed_and_its_batch_measured_only_when_it_succeeds() -> None:
    metrics = Metrics()
    with metrics.timed_commit(16):
        pass
    with pytest.raises(TimeoutError), metrics.timed_commit(4):
        raise TimeoutError
    assert value(metrics, "modgate_audit_commit_duration_seconds_count", result="ok") == 1
    assert value(metrics, "modgate_audit_commit_duration_seconds_count", result="error") == 1
    assert value(metrics, "modgate_audit_batch_rows_count") == 1
    assert value(metrics, "modgate_audit_batch_rows_sum") == 16
    assert value(metrics, "modgate_audit_batch_rows_bucket", le="16.0") == 1
    assert value(metrics, "modgate_audit_batch_rows_bucket", le="8.0") == 0


def test_the_page_is_the_prometheus_text_format_with_no_created_series() -> None:
    metrics = Metrics()
    metrics.observe_request(kind="list", decision="deny", status=403, duration_s=0.01)
    page = metrics.render()
    names = {family.name for family in text_string_to_metric_families(page)}
    assert {"modgate_requests", "modgate_request_duration_seconds", "modgate_refusals"} <= names
    assert "_created" not in page


def request_input() -> PolicyInput:
    target = parse_module_request("/example.com/hello/@v/v1.0.0.info")
    return PolicyInput("r1", target, ANONYMOUS, "127.0.0.1", datetime.now(UTC))


@pytest.mark.opa
async def test_timed_policy_times_decisions_and_keeps_the_revision_in_force(
    opa_server: OpaServer,
) -> None:
    metrics = Metrics()
    endpoint = OpaEndpoint.for_url(opa_server.url)
    async with OpaPolicyEngine(endpoint, "modgate/decision", 5.0, 0) as engine:
        decision = await TimedPolicy(engine, metrics).decide(request_input())
    result = "allow" if decision.allowed else "deny"
    assert value(metrics, "modgate_policy_decision_duration_seconds_count", result=result) == 1
    assert value(metrics, "modgate_policy_info", revision=decision.revision) == 1
    assert decision.revision == "2026-11-25.1"


async def test_timed_policy_counts_a_decision_that_could_not_be_had() -> None:
    metrics = Metrics()
    endpoint = OpaEndpoint.for_url(f"http://127.0.0.1:{free_port()}")  # nothing listens
    async with OpaPolicyEngine(endpoint, "modgate/decision", 1.0, 0) as engine:
        with pytest.raises(PolicyError):
            await TimedPolicy(engine, metrics).decide(request_input())
    assert value(metrics, "modgate_policy_decision_duration_seconds_count", result="error") == 1
    assert "modgate_policy_info{" not in metrics.render()  # no revision known yet
    assert "\nmodgate_policy_info " not in metrics.render()


def test_the_revision_in_force_is_one_series_replaced_when_it_changes() -> None:
    metrics = Metrics()
    for revision in ("r1", "r1", "r2"):
        metrics.observe_decision(Decision(True, (), "public", revision), 0.001)
    page = metrics.render()
    assert [line for line in page.splitlines() if line.startswith("modgate_policy_info")] == [
        'modgate_policy_info{revision="r2"} 1.0'
    ]
