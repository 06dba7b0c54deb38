"""Metrics: counters and gauges rendered in the Prometheus text format (``GET /metrics``).

One ``Metrics`` object per process, made where the server is built and handed to everything
that counts (the app, the audit writer, the HTTP protocol class). A dependency-free
registry: the few metric kinds modgate needs are counters with labels and gauges read when
scraped, which the Prometheus text format (version 0.0.4) renders in a dozen lines.

    metrics = Metrics()
    metrics.http_refused.inc(reason="header_too_large")
    text = metrics.render()
"""

from collections.abc import Callable, Iterable

LabelValues = tuple[str, ...]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Counter:
    """A monotonically increasing count, one per combination of label values."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help_text = help_text
        self.labels = labels
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, not {tuple(labels)}")
        key = tuple(labels[name] for name in self.labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """The current count for ``labels`` (0 when never incremented): for tests and /readyz."""
        return self._values.get(tuple(labels[name] for name in self.labels), 0.0)

    def samples(self) -> Iterable[tuple[LabelValues, float]]:
        if not self.labels and not self._values:
            return [((), 0.0)]  # a counter without labels is always shown, starting at 0
        return sorted(self._values.items())

    kind = "counter"


class Gauge:
    """A value read when scraped (queue depth, open connections)."""

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.name = name
        self.help_text = help_text
        self.labels: tuple[str, ...] = ()
        self._read = read

    def samples(self) -> Iterable[tuple[LabelValues, float]]:
        return [((), float(self._read()))]

    kind = "gauge"


class Metrics:
    """Every metric modgate exports; attribute names say what is counted."""

    def __init__(self) -> None:
        self._gauges: list[Gauge] = []
        self.requests = Counter(
            "modgate_requests_total",
            "Proxy requests answered, by outcome (allow or deny) and error code.",
            ("outcome", "code"),
        )
        self.http_refused = Counter(
            "modgate_http_refused_total",
            "Connections or requests refused by the HTTP layer before the application saw "
            "them (never in the audit trail), by reason.",
            ("reason",),
        )
        self.audit_rows_isolated = Counter(
            "modgate_audit_rows_isolated_total",
            "Audit rows the store refused inside a group commit; the rest of the batch was "
            "written without them, and each was written again in a safe form or refused.",
            ("result",),
        )
        self.audit_unrecorded_refusals = Counter(
            "modgate_audit_unrecorded_refusals_total",
            "Refusals answered while the audit store could not record them (logged with their "
            "request id).",
        )
        self.audit_lost_completions = Counter(
            "modgate_audit_lost_completions_total",
            "Completion records that could not be written (the decision record stays, without "
            "its completion).",
        )
        self.auth_rate_limited = Counter(
            "modgate_auth_rate_limited_total",
            "Requests refused with 429 because their client sent too many bad credentials.",
        )

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Register a gauge read at scrape time (e.g. the audit queue depth)."""
        self._gauges.append(Gauge(name, help_text, read))

    def _all(self) -> list[Counter | Gauge]:
        counters = [value for value in vars(self).values() if isinstance(value, Counter)]
        return [*counters, *self._gauges]

    def render(self) -> str:
        """The Prometheus text exposition format, version 0.0.4."""
        lines: list[str] = []
        for metric in self._all():
            lines.append(f"# HELP {metric.name} {metric.help_text}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            for values, sample in metric.samples():
                pairs = ",".join(
                    f'{name}="{_escape_label(value)}"'
                    for name, value in zip(metric.labels, values, strict=True)
                )
                labels = f"{{{pairs}}}" if pairs else ""
                lines.append(f"{metric.name}{labels} {sample:g}")
        return "\n".join(lines) + "\n"


PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
