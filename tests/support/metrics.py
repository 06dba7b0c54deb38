"""Read a /metrics page the way Prometheus does (prometheus-client's own text parser)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, tuple[tuple[str, str], ...]]
"""A series: its name and its labels, sorted by label name."""


def samples(page: str) -> dict[Sample, float]:
    """Every sample of a /metrics page, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def families(page: str) -> set[str]:
    """The metric family names a page declares (counters without ``_total``)."""
    return {family.name for family in text_string_to_metric_families(page)}


def scrape(url: str) -> dict[Sample, float]:
    """The samples of the page at ``url`` (a metrics listener: plain http, no token)."""
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return samples(response.text)
