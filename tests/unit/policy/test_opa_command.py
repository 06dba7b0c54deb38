"""One `opa run` command line: compose.yaml's OPA, the supervised OPA and the tests' OPA
servers all run with what gateway/policy/opa_command.py builds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.errors import ConfigError
from gateway.policy.opa_command import opa_run_args
from gateway.policy.supervisor import SupervisedOpa

REPO = Path(__file__).resolve().parents[3]
# What the compose deployment adds to the common command line: OPA's own REST API is
# reachable over the compose network, so it wants modgate's token and only lets it read.
COMPOSE_EXTRA = (
    "--authentication=token",
    "--authorization=basic",
    "--set-file=modgate.gateway_token=/run/secrets/opa_token",
)


def test_compose_runs_opa_with_the_command_line_modgate_builds() -> None:
    # given the OPA service of compose.yaml
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    command = compose["services"]["opa"]["command"]
    # then it is exactly the common command line, plus its authentication and authz policy
    expected = opa_run_args("0.0.0.0:8181", ["/policies", "/authz"], extra=COMPOSE_EXTRA)
    assert command == expected
    # and the image is the OPA the project builds and tests with
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    image_version = compose["services"]["opa"]["image"].rsplit(":", 1)[1]
    assert f"OPA_VERSION := v{image_version}\n" in makefile


def test_the_store_is_read_optimised_and_logs_are_quiet_by_default() -> None:
    args = opa_run_args("127.0.0.1:8181", ["policies"])
    assert "--optimize-store-for-read-speed" in args
    assert args[args.index("--log-level") + 1] == "error"
    assert not any("decision_logs" in arg for arg in args)
    assert args[-1] == "policies"


def test_decision_logs_turn_on_the_console_decision_logger() -> None:
    args = opa_run_args("127.0.0.1:8181", ["policies"], decision_logs=True, log_level="info")
    assert args[args.index("--set") + 1] == "decision_logs.console=true"
    assert args[args.index("--log-level") + 1] == "info"


def test_an_unknown_log_level_is_refused_with_the_key_named() -> None:
    with pytest.raises(ConfigError, match=r"policy\.opa_log_level: 'warn'"):
        opa_run_args("127.0.0.1:8181", ["policies"], log_level="warn")


def test_the_supervised_opa_runs_the_common_command_line_on_its_socket(tmp_path: Path) -> None:
    # given a supervisor of OPA on a policies directory
    opa = SupervisedOpa(Path("/usr/bin/opa"), tmp_path, log_level="info", decision_logs=True)
    # when it builds the command line of a start
    argv = opa._argv(tmp_path / "opa-1.sock")
    # then it is the common one, on the socket, with the socket closed to other users
    common = opa_run_args(
        f"unix://{tmp_path / 'opa-1.sock'}",
        [str(tmp_path)],
        log_level="info",
        decision_logs=True,
        extra=("--unix-socket-perm", "600"),
    )
    assert argv == ["/usr/bin/opa", *common]
