"""Self-test for tests/support/opa.py: a real OPA server starts, answers, reloads and stops."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.opa import OpaServer

pytestmark = pytest.mark.opa


def query(url: str) -> object:
    with urllib.request.urlopen(url + "/v1/data/t/allow", timeout=5) as resp:
        return json.load(resp).get("result")


def test_opa_start_health_watch_stop(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "t.rego").write_text("package t\nallow := true\n")
    (policies / "t_test.rego").write_text("this is not rego {{{\n")  # must be --ignore'd
    with OpaServer(policies, log_path=tmp_path / "opa.log") as opa:
        assert opa.healthy()
        assert query(opa.url) is True
        (policies / "t.rego").write_text("package t\nallow := false\n")
        deadline = time.monotonic() + 10
        while query(opa.url) is not False:  # --watch reloads the policy
            assert time.monotonic() < deadline, "OPA did not reload the changed policy"
            time.sleep(0.1)
        opa.stop()
        assert not opa.healthy()
    assert opa.log_path.exists()
