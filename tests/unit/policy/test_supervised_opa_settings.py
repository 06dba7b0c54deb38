"""policy.opa_log_level and policy.decision_logs: checked at start-up, for the supervised
OPA only (a remote OPA logs as its own command line says)."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings


def test_the_supervised_opa_logs_errors_only_and_no_decisions_by_default() -> None:
    policy = load_settings(env={}).policy
    assert (policy.opa_log_level, policy.decision_logs) == ("error", False)


def test_log_level_and_decision_logs_are_read_from_the_environment() -> None:
    env = {"MODGATE_POLICY_OPA_LOG_LEVEL": "info", "MODGATE_POLICY_DECISION_LOGS": "true"}
    policy = load_settings(env=env).policy
    assert (policy.opa_log_level, policy.decision_logs) == ("info", True)


def test_a_log_level_opa_does_not_know_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"policy\.opa_log_level: 'verbose' is not one of"):
        load_settings(env={"MODGATE_POLICY_OPA_LOG_LEVEL": "verbose"})


@pytest.mark.parametrize(
    "setting", [("MODGATE_POLICY_DECISION_LOGS", "true"), ("MODGATE_POLICY_OPA_LOG_LEVEL", "info")]
)
def test_they_are_refused_with_a_remote_opa_where_they_would_do_nothing(
    setting: tuple[str, str],
) -> None:
    env = {"MODGATE_POLICY_OPA_URL": "http://opa:8181", setting[0]: setting[1]}
    with pytest.raises(ConfigError, match="are for the supervised OPA"):
        load_settings(env=env)
