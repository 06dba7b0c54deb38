"""deploy/prometheus/alerts.yml: valid for Prometheus, firing when it should, and naming
only metrics a running gateway exports.

promtool (from Debian's prometheus package, `make system-deps`) is required: a missing
promtool fails these tests rather than skipping them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Tokens
from tests.hardening.test_operations import bearer
from tests.support.gateway import GatewayProcess

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "alerts_test.yml"
PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes itself for each scrape target."""
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def promtool() -> str:
    local = REPO / ".tools" / "bin" / "promtool"
    found = str(local) if local.exists() else shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: `make system-deps` puts it in .tools/bin")
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_accepts_the_rules() -> None:
    done = run_promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_each_alert_fires_on_its_series_and_only_then() -> None:
    done = run_promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested() -> None:
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.MULTILINE))
    tested = set(re.findall(r"alertname: (\w+)$", RULE_TESTS.read_text(), re.MULTILINE))
    assert alerts == tested


def exported_series(page: str) -> set[str]:
    """The series names a /metrics page declares (counters and histograms with the
    suffixes Prometheus stores them under), whether or not they have samples yet."""
    names = set()
    for family in text_string_to_metric_families(page):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def named_metrics(text: str) -> set[str]:
    return set(re.findall(r"""\b(modgate_[a-z0-9_]+|up)\b(?=[{\[)\s"'])""", text))


def test_the_rules_name_only_metrics_a_running_gateway_exports(
    gateway: GatewayProcess, client: httpx.Client, tokens: Tokens
) -> None:
    # given a gateway that has answered a request (the policy revision is known)
    client.get("/example.com/hello/@v/list", headers=bearer(tokens.alice))
    page = httpx.get(gateway.metrics_url, timeout=10).text
    exported = exported_series(page)
    # when the rules and their unit tests are read for the metrics they name
    in_rules = named_metrics(RULES.read_text())
    in_tests = named_metrics(RULE_TESTS.read_text())
    # then each is on the page (or is one Prometheus makes itself), under that very name
    assert {"modgate_upstream_failures_total", "modgate_refusals_total"} <= in_rules
    assert in_rules - exported == PROMETHEUS_OWN
    assert in_tests - exported == PROMETHEUS_OWN
