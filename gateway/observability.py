"""Metrics: what modgate counts and times, in the Prometheus text format (``GET /metrics``).

One ``Metrics`` object per application, made where the server is built and handed to
everything that counts (the app, the audit writer, the forwarder, the HTTP protocol
class). Each has a registry of its own, not prometheus-client's global one: tests build
many applications in one process, and two gateways must not count into one page.

    metrics = Metrics()
    metrics.http_refused.inc(reason="header_too_large")
    metrics.observe_request(kind="zip", decision="allow", status=200, duration_s=0.12)
    text = metrics.render()

Every label value is bounded by construction: request kinds, policy outcomes, HTTP
statuses, error codes and the configured upstreams (redacted). No module path, subject or
request id is ever a label: those belong in the log line of each request (``logs.py``).
"""

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest

from .health import Check
from .policy.decision import Decision
from .policy.engine import PolicyEngine
from .policy.input import PolicyInput

# No ``*_created`` series beside each counter and histogram: they double the page, and
# Prometheus sees restarts from the counters themselves. (A process-wide switch.)
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format, which every Prometheus reads; ``generate_latest`` writes it
for names like modgate's (no UTF-8 in metric or label names)."""

REQUEST_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
"""A whole request: a cached list in milliseconds, a large zip in minutes."""
STAGE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0)
"""One OPA decision or one audit commit: sub-millisecond to the 3 s default deadline."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 200)
"""Rows per audit group commit, up to the writer's MAX_BATCH_ROWS."""


def status_label(status: int) -> str:
    """An HTTP status as a label: the code itself, ``other`` outside 100-599."""
    return str(status) if 100 <= status <= 599 else "other"


class LabelledCounter:
    """A counter called as ``inc(amount, **labels)``, the shape modgate's call sites use.

    A thin adapter over prometheus-client's ``Counter`` (whose ``labels(...).inc()`` is
    longer at every call site), with ``value`` for tests and /readyz."""

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self._labels = tuple(labels)
        self._label_set = frozenset(labels)
        self._counter = Counter(name, help_text, self._labels, registry=registry)
        self._registry = registry
        self._children: dict[tuple[str, ...], Counter] = {}
        """Each label set's child, found once (``labels()`` takes a lock per call)."""

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if labels.keys() != self._label_set:
            raise ValueError(f"{self.name} takes labels {self._labels}, not {tuple(labels)}")
        if not self._labels:
            self._counter.inc(amount)
            return
        key = tuple(labels[name] for name in self._labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._counter.labels(*key)
        child.inc(amount)

    def value(self, **labels: str) -> float:
        """The current count for ``labels`` (0 when never incremented)."""
        found = self._registry.get_sample_value(f"{self.name}_total", labels)
        return 0.0 if found is None else found


class _OutcomeCounter:
    """``requests.inc(outcome=..., code=...)``, called once per answer by the app, kept as
    it was so its call sites stay: a refusal counts under its error code; an allowed
    answer is counted, with its kind and status, once complete (``observe_request``)."""

    def __init__(self, refusals: LabelledCounter) -> None:
        self._refusals = refusals

    def inc(self, amount: float = 1.0, *, outcome: str, code: str) -> None:
        if outcome == "deny":
            self._refusals.inc(amount, code=code)


class Metrics:
    """Every metric modgate exports; attribute names say what is counted."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._gauges: dict[str, Gauge] = {}
        self._requests = Counter(
            "modgate_requests",
            "Proxy requests completed, by kind, the policy's decision (allow, deny, or none "
            "when answered before the policy was asked) and the HTTP status served.",
            ("kind", "decision", "status"),
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._request_seconds = Histogram(
            "modgate_request_duration_seconds",
            "Time from a proxy request's arrival to the end of its answer, by kind.",
            ("kind",),
            buckets=REQUEST_BUCKETS_S,
            registry=self.registry,
        )
        self.refusals = self._counter(
            "modgate_refusals",
            "Proxy requests refused (4xx/5xx answered by modgate itself), by error code.",
            ("code",),
        )
        self.requests = _OutcomeCounter(self.refusals)
        self.policy_seconds = Histogram(
            "modgate_policy_decision_duration_seconds",
            "Time one policy decision took (OPA, retries included), by result "
            "(allow, deny, error).",
            ("result",),
            buckets=STAGE_BUCKETS_S,
            registry=self.registry,
        )
        # An info metric (a gauge at 1, named *_info): no sample at all until the first
        # decision names a revision, then one series, replaced when the revision changes.
        self._policy = Gauge(
            "modgate_policy_info",
            "The policy revision in force: the revision named by the latest decision.",
            ("revision",),
            registry=self.registry,
        )
        self._revision: str | None = None
        self.audit_commit_seconds = Histogram(
            "modgate_audit_commit_duration_seconds",
            "Time one audit group commit took, by result (ok, error).",
            ("result",),
            buckets=STAGE_BUCKETS_S,
            registry=self.registry,
        )
        self.audit_batch_rows = Histogram(
            "modgate_audit_batch_rows",
            "Rows written per audit group commit.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.audit_write_failures = self._counter(
            "modgate_audit_write_failures",
            "Audit rows not written, by reason (timeout, unavailable, late: queued past the "
            "deadline); each one's request was refused or lost its completion.",
            ("reason",),
        )
        self.upstream_requests = self._counter(
            "modgate_upstream_requests",
            "Requests sent to an upstream, by upstream (its URL without user info).",
            ("upstream",),
        )
        self.upstream_failures = self._counter(
            "modgate_upstream_failures",
            "Upstream requests that failed over to the next upstream (or to a refusal), by "
            "upstream and reason (timeout, connection, http_5xx, redirect, body_timeout, "
            "body_error, too_large).",
            ("upstream", "reason"),
        )
        self.http_refused = self._counter(
            "modgate_http_refused",
            "Connections or requests refused by the HTTP layer before the application saw "
            "them (never in the audit trail), by reason.",
            ("reason",),
        )
        self.tls_handshake_failures = self._counter(
            "modgate_tls_handshake_failures",
            "TLS handshakes that failed (never in the audit trail: no request was read), by "
            "reason: client_certificate_refused (a foreign CA, expired, not for client "
            "authentication), client_certificate_missing, protocol_version, timeout, other.",
            ("reason",),
        )
        self.jwt_key_fetches = self._counter(
            "modgate_jwt_key_fetches",
            "Fetches of a JWT issuer's key set, by issuer (its configured name) and result "
            "(ok, failed): failures while the last keys keep serving show here first.",
            ("issuer", "result"),
        )
        self.audit_rows_isolated = self._counter(
            "modgate_audit_rows_isolated",
            "Audit rows the store refused inside a group commit; the rest of the batch was "
            "written without them, and each was written again in a safe form or refused.",
            ("result",),
        )
        self.audit_unrecorded_refusals = self._counter(
            "modgate_audit_unrecorded_refusals",
            "Refusals answered while the audit store could not record them (logged with their "
            "request id).",
        )
        self.audit_lost_completions = self._counter(
            "modgate_audit_lost_completions",
            "Completion records that could not be written (the decision record stays, without "
            "its completion).",
        )
        self.auth_rate_limited = self._counter(
            "modgate_auth_rate_limited",
            "Requests refused with 429 because their client sent too many bad credentials.",
        )

    def _counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> LabelledCounter:
        return LabelledCounter(name, help_text, labels, self.registry)

    def observe_request(self, *, kind: str, decision: str, status: int, duration_s: float) -> None:
        """One completed proxy request: counted, and its duration observed."""
        key = (kind, decision, status_label(status))
        children = self._request_children.get(key)
        if children is None:  # found once per label set: labels() takes a lock per call
            children = (self._requests.labels(*key), self._request_seconds.labels(kind))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(duration_s)

    def observe_decision(self, decision: Decision | None, duration_s: float) -> None:
        """One policy decision (None: it failed); its revision becomes the one in force."""
        if decision is None:
            result = "error"
        else:
            result = "allow" if decision.allowed else "deny"
            self._set_revision(decision.revision)
        self.policy_seconds.labels(result=result).observe(duration_s)

    def _set_revision(self, revision: str) -> None:
        if revision == self._revision:  # the usual case: nothing to change
            return
        if self._revision is not None:
            self._policy.remove(self._revision)
        self._policy.labels(revision=revision).set(1)
        self._revision = revision

    def observe_commit(self, rows: int, duration_s: float, *, ok: bool) -> None:
        """One audit group commit of ``rows`` rows."""
        self.audit_commit_seconds.labels(result="ok" if ok else "error").observe(duration_s)
        if ok:
            self.audit_batch_rows.observe(rows)

    @contextmanager
    def timed_commit(self, rows: int) -> Iterator[None]:
        """Time the audit group commit of ``rows`` rows inside the block: ``error`` if it
        raises, ``ok`` (and the batch size observed) otherwise."""
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self.observe_commit(rows, time.perf_counter() - started, ok=False)
            raise
        self.observe_commit(rows, time.perf_counter() - started, ok=True)

    def requests_completed(self, **labels: str) -> float:
        """modgate_requests_total for ``labels`` (kind, decision, status): for tests."""
        found = self.registry.get_sample_value("modgate_requests_total", labels)
        return 0.0 if found is None else found

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read at scrape time (e.g. the audit queue depth). Registering a name
        again (an application's lifespan run twice) points it at the new ``read``."""
        gauge = self._gauges.get(name)
        if gauge is None:
            gauge = self._gauges[name] = Gauge(name, help_text, registry=self.registry)
        gauge.set_function(read)

    def render(self) -> str:
        """The Prometheus text exposition format, version 0.0.4."""
        return generate_latest(self.registry).decode("utf-8")


class TimedPolicy:
    """A PolicyEngine that times each decision of ``engine`` and keeps the revision in
    force (``modgate_policy_info``): wraps the engine once, where it is opened."""

    def __init__(self, engine: PolicyEngine, metrics: Metrics) -> None:
        self._engine = engine
        self._metrics = metrics

    async def decide(self, policy_input: PolicyInput) -> Decision:
        started = time.perf_counter()
        try:
            decision = await self._engine.decide(policy_input)
        except Exception:
            self._metrics.observe_decision(None, time.perf_counter() - started)
            raise
        self._metrics.observe_decision(decision, time.perf_counter() - started)
        return decision

    async def document(self, path: str, policy_input: PolicyInput | None = None) -> object:
        return await self._engine.document(path, policy_input)

    async def healthy(self) -> bool:
        return await self._engine.healthy()

    def checks(self) -> list[Check]:
        return self._engine.checks()
