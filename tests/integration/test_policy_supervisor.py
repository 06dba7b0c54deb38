"""The OPA that `make run` supervises: starts on the bundled policies, refuses a policy that
does not compile (with a clear error), and comes back when it dies, on a new socket the
policy engine follows. (Who may reach it: tests/hardening/test_opa_supervision.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.errors import ConfigError, PolicyError
from gateway.goproxy.requests import ModuleRequest
from gateway.identity.base import Identity
from gateway.policy.bundle import read_bundle
from gateway.policy.input import PolicyInput
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine
from gateway.policy.supervisor import SupervisedOpa
from tests.conftest import REPO
from tests.support.cli import run_modgate
from tests.support.opa import OpaServer, find_opa

pytestmark = pytest.mark.opa

# Built by the gateway's own input builder, so this is exactly the shape OPA gets.
ALICE_INPUT = PolicyInput(
    "sample",
    ModuleRequest("example.com/hello", "list"),
    Identity(subject="alice", groups=("developers",), method="token"),
    "127.0.0.1",
    datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
)


def exists(path: str) -> bool:
    return Path(path).exists()


async def test_supervised_opa_decides_on_the_bundled_policies_and_restarts_when_killed() -> None:
    async with (
        SupervisedOpa(find_opa(), REPO / "policies") as opa,
        OpaPolicyEngine(opa.endpoint, "modgate/decision", 2, 0) as engine,
    ):
        opa.on_restart(engine.follow)
        assert (await engine.decide(ALICE_INPUT)).allowed
        first_pid, first_socket = opa.pid, opa.endpoint.unix_socket
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        for _ in range(100):
            await asyncio.sleep(0.1)
            if opa.pid != first_pid and await engine.healthy():
                break
        assert (await engine.decide(ALICE_INPUT)).allowed
        assert engine.endpoint.unix_socket == opa.endpoint.unix_socket != first_socket
        assert not exists(first_socket)


async def test_requests_fail_closed_while_the_supervised_opa_is_down() -> None:
    async with (
        SupervisedOpa(find_opa(), REPO / "policies") as opa,
        OpaPolicyEngine(opa.endpoint, "modgate/decision", 2, 0) as engine,
    ):
        opa.on_restart(engine.follow)
        first_pid = opa.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        for _ in range(50):  # the watchdog tells the engine at once, before restarting
            await asyncio.sleep(0.02)
            if not await engine.healthy():
                break
        with pytest.raises(PolicyError, match="unreachable"):
            await engine.decide(ALICE_INPUT)


async def test_the_engine_reads_any_document_of_the_policy() -> None:
    async with (
        SupervisedOpa(find_opa(), REPO / "policies") as opa,
        OpaPolicyEngine(opa.endpoint, "modgate/decision", 2, 0) as engine,
    ):
        decision = await engine.document("modgate/decision", ALICE_INPUT)
        assert isinstance(decision, dict) and decision["allow"] is True
        with pytest.raises(PolicyError, match="undefined"):
            await engine.document("modgate/no_such_rule")


async def test_policy_that_does_not_compile_stops_start_up_with_a_clear_error(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(REPO / "policies", broken)
    (broken / "modgate" / "decision.rego").write_text("package modgate\n\nallow if {\n")
    with pytest.raises(ConfigError, match="check the policies"):
        async with SupervisedOpa(find_opa(), broken):
            pass


def test_policy_check_command_fails_on_a_broken_policy(tmp_path: Path) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(REPO / "policies", broken)
    (broken / "modgate" / "decision.rego").write_text("package modgate\n\nallow if {\n")
    done = run_modgate("policy", "check", policies=broken)
    assert done.returncode != 0
    assert "decision.rego" in done.stdout + done.stderr


def test_policy_test_command_runs_the_bundled_rego_tests() -> None:
    done = run_modgate("policy", "test")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    # with the golden inputs (tests/golden), as data.policy_input
    assert "data.modgate_golden_test.test_golden_resolved_query_is" in done.stdout


async def test_supervised_opa_is_stopped_and_its_directory_removed_when_the_gateway_stops() -> None:
    async with SupervisedOpa(find_opa(), REPO / "policies") as opa:
        pid, socket_path = opa.pid, opa.endpoint.unix_socket
        assert exists(socket_path)
    assert pid is not None and not exists(f"/proc/{pid}")
    assert not exists(os.path.dirname(socket_path))


def test_serve_refuses_to_start_on_policies_that_do_not_compile(tmp_path: Path) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(REPO / "policies", broken)
    (broken / "modgate" / "decision.rego").write_text("package modgate\n\nallow if {\n")
    env = {
        "GOPROXY": "https://mirror.example",
        "MODGATE_TLS_PLAIN_HTTP": "true",
        "MODGATE_AUDIT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/audit.db",
    }
    done = run_modgate("serve", policies=broken, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "do not compile" in done.stderr and "decision.rego:4: rego_parse_error" in done.stderr
    assert not (tmp_path / "audit.db").exists()


def test_policy_check_lists_malformed_policy_data(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    data_file = policies / "modgate" / "config" / "data.json"
    data = json.loads(data_file.read_text())
    data["private"]["pattern"] = data["private"].pop("patterns")
    data_file.write_text(json.dumps(data))
    done = run_modgate("policy", "check", policies=policies)
    assert done.returncode == 1
    assert "malformed policy data: private" in done.stderr


def test_policy_check_passes_the_bundled_policies_and_names_their_revision() -> None:
    done = run_modgate("policy", "check")
    assert done.returncode == 0, done.stderr
    revision = read_bundle(REPO / "policies").revision
    assert f"data well-formed, revision {revision}" in done.stdout


async def test_an_opa_serving_the_written_bundle_decides_with_its_content_hash(
    tmp_path: Path,
) -> None:
    """`modgate policy bundle` for OPAs fed by a bundle server: the revision every decision
    carries is the hash of the files, read back from the OPA that serves them."""
    tarball = tmp_path / "bundle.tar.gz"
    done = run_modgate("policy", "bundle", "-o", str(tarball))
    assert done.returncode == 0, done.stderr
    revision = read_bundle(REPO / "policies").revision
    assert f"bundle {tarball}: revision {revision}" in done.stdout
    with OpaServer(tarball, extra_args=("--bundle",)) as opa:
        endpoint = OpaEndpoint.for_url(opa.url)
        async with OpaPolicyEngine(endpoint, "modgate/decision", 2, 0) as engine:
            decision = await engine.decide(ALICE_INPUT)
    assert decision.allowed
    assert decision.revision == revision


def test_policy_bundle_writes_nothing_for_a_policy_that_does_not_compile(tmp_path: Path) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(REPO / "policies", broken)
    (broken / "modgate" / "broken.rego").write_text("package modgate\n\nallow if {\n")
    tarball = tmp_path / "bundle.tar.gz"
    done = run_modgate("policy", "bundle", "-o", str(tarball), policies=broken)
    assert done.returncode != 0
    assert "broken.rego" in done.stderr + done.stdout
    assert not tarball.exists()
