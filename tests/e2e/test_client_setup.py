"""`modgate client setup` configures a developer's real go command for a real gateway
(issue 10, point 6): it reads the gateway's private patterns, prints every change
(``--dry-run`` makes none), writes the go settings with `go env -w` and a mode-0600
.netrc line, and the go command then pulls through modgate with no other setting.
"""

from __future__ import annotations

import json
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Modules, Tokens
from tests.support.cli import run_modgate
from tests.support.gateway import GatewayProcess
from tests.support.gomodules import go_env

pytestmark = [pytest.mark.gocmd, pytest.mark.postgres, pytest.mark.opa]


def developer(home: Path, gateway: GatewayProcess) -> dict[str, str]:
    """A fresh developer account: its own go settings file, HOME and caches."""
    env = go_env(
        HOME=str(home),
        SSL_CERT_FILE=str(gateway.ca_file),
        GOMODCACHE=str(home / "modcache"),
        GOPATH=str(home / "gopath"),
        GOCACHE=str(home / "gocache"),
        GOFLAGS="-modcacherw",
    )
    for key in ("GOPROXY", "GOENV", "GOAUTH", "NETRC"):  # from the go settings file only
        env.pop(key, None)
    env["GOENV"] = str(home / "go.env")
    return env


def go(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["go", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def setup(
    env: dict[str, str], gateway: GatewayProcess, token_file: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_modgate(
        "client", "setup", "--url", gateway.url, "--token-file", str(token_file),
        "--ca-file", str(gateway.ca_file), *extra, env=env,
    )  # fmt: skip


def test_dry_run_prints_the_changes_and_makes_none(
    gateway: GatewayProcess, tokens: Tokens, tmp_path: Path
) -> None:
    env = developer(tmp_path, gateway)
    token_file = tmp_path / "token"
    token_file.write_text(tokens.alice + "\n")
    done = setup(env, gateway, token_file, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"would set: go env -w GOPROXY={gateway.url}" in done.stdout
    assert "would set: go env -w GONOSUMDB=corp.example.com/*" in done.stdout
    assert f"machine 127.0.0.1:{gateway.port} login alice password mgt_" in done.stdout
    assert tokens.alice not in done.stdout  # the secret is never printed
    assert not (tmp_path / ".netrc").exists() and not (tmp_path / "go.env").exists()


def test_setup_lets_the_go_command_pull_through_modgate(
    gateway: GatewayProcess, tokens: Tokens, modules: Modules, tmp_path: Path
) -> None:
    env = developer(tmp_path, gateway)
    token_file = tmp_path / "token"
    token_file.write_text(tokens.alice)
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine other.example login x password y\n")
    done = setup(env, gateway, token_file)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    lines = netrc.read_text().splitlines()
    assert lines == [
        "machine other.example login x password y",  # the user's own entries stay
        f"machine 127.0.0.1:{gateway.port} login alice password {tokens.alice}",
    ]
    settings = json.loads(
        go(env, "env", "-json", "GOPROXY", "GONOSUMDB", "GOAUTH", cwd=tmp_path).stdout
    )
    assert settings == {
        "GOPROXY": gateway.url,
        "GONOSUMDB": "corp.example.com/*",
        "GOAUTH": "netrc",
    }
    # the test modules are not in the public checksum database the gateway forwards to
    go(env, "env", "-w", "GONOSUMDB=corp.example.com/*,example.com", cwd=tmp_path)
    pulled = go(env, "mod", "download", "-json", "example.com/hello@v1.0.0", cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert json.loads(pulled.stdout)["Sum"] == modules["example.com/hello", "v1.0.0"].zip_hash()
    again = setup(env, gateway, token_file)  # idempotent: one entry, go env already set
    assert again.returncode == 0 and netrc.read_text().count(f"127.0.0.1:{gateway.port}") == 1


def test_a_bad_token_changes_nothing(gateway: GatewayProcess, tmp_path: Path) -> None:
    env = developer(tmp_path, gateway)
    token_file = tmp_path / "token"
    token_file.write_text("mgt_0000000000000000_" + "0" * 64)
    done = setup(env, gateway, token_file)
    assert done.returncode == 1
    assert "answered 401" in done.stderr and "unknown or wrong API token" in done.stderr
    assert not (tmp_path / ".netrc").exists() and not (tmp_path / "go.env").exists()


def test_the_client_settings_need_credentials(gateway: GatewayProcess) -> None:
    context = ssl.create_default_context(cafile=str(gateway.ca_file))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{gateway.url}/-/client-settings", context=context, timeout=10)
    refused.value.close()  # the error holds the response, and its TLS socket, open
    assert refused.value.code == 401


def test_the_plan_in_process_reads_the_gateway_and_writes_a_private_netrc(
    gateway: GatewayProcess, tokens: Tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same steps as the command, in this process: what the gateway says, what would
    change, and the go settings and .netrc once applied."""
    from gateway import client_setup

    server = client_setup.fetch_settings(gateway.url, tokens.alice, str(gateway.ca_file))
    assert (server.subject, server.private_patterns) == ("alice", ("corp.example.com/*",))
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("GOENV", str(tmp_path / "go.env"))
    monkeypatch.setenv("HOME", str(tmp_path))
    current = client_setup.current_go_env()
    setup = client_setup.plan(server, tokens.alice, None, current, netrc)
    assert {c.key for c in setup.changes} >= {"GOPROXY", "GONOSUMDB"}  # GOAUTH: netrc already
    assert tokens.alice not in setup.netrc_line
    client_setup.apply(setup)
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    assert client_setup.current_go_env()["GOPROXY"] == gateway.url
    with pytest.raises(client_setup.SetupError, match="answered 401"):
        client_setup.fetch_settings(
            gateway.url, "mgt_" + "0" * 16 + "_" + "0" * 64, str(gateway.ca_file)
        )
    with pytest.raises(client_setup.SetupError, match="not https"):
        client_setup.fetch_settings(gateway.url.replace("https", "http"), tokens.alice, None)
