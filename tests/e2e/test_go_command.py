"""The stock go command pulls through modgate over https, as a developer would.

GOPROXY points at modgate only, credentials come from a .netrc file (the port must be in
the `machine` token: cmd/go/internal/auth matches host:port), the test CA is trusted via
SSL_CERT_FILE, and each test has a fresh module cache so every request really happens.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Modules, Tokens
from tests.support.audit import audit_rows
from tests.support.gateway import GatewayProcess
from tests.support.gomodules import go_env
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.gocmd, pytest.mark.postgres, pytest.mark.opa]

NO_SUMDB_FOR_TEST_MODULES = "example.com,corp.example.com"


class GoCommand:
    """The go command, configured like a developer behind modgate."""

    def __init__(self, gateway: GatewayProcess, home: Path, token: str | None) -> None:
        self.home = home
        netrc = home / "netrc"
        login = f"machine 127.0.0.1:{gateway.port} login alice password {token}\n"
        netrc.write_text(login if token else "")
        self.env = go_env(
            GOPROXY=gateway.url,
            NETRC=str(netrc),
            SSL_CERT_FILE=str(gateway.ca_file),
            GONOSUMDB=NO_SUMDB_FOR_TEST_MODULES,
            GOMODCACHE=str(home / "modcache"),
            GOPATH=str(home / "gopath"),
            GOCACHE=str(home / "gocache"),
            GOFLAGS="-modcacherw",
            HOME=str(home),
        )

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["go", *args],
            cwd=cwd or self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def download(self, module_at_version: str) -> tuple[int, dict[str, str]]:
        done = self.run("mod", "download", "-json", module_at_version)
        return done.returncode, json.loads(done.stdout or "{}")


@pytest.fixture
def go(gateway: GatewayProcess, tokens: Tokens, tmp_path: Path) -> GoCommand:
    return GoCommand(gateway, tmp_path, tokens.alice)


def since(postgres: ThrowawayPostgres, start: datetime, module: str) -> list[dict[str, object]]:
    return audit_rows(postgres.libpq_dsn(), "received_at >= $1 AND module = $2", start, module)


def test_allowed_module_downloads_byte_identical_with_one_audit_record_per_request(
    go: GoCommand,
    modules: Modules,
    public_upstream: UpstreamServer,
    postgres: ThrowawayPostgres,
) -> None:
    mv = modules["example.com/hello", "v1.0.0"]
    upstream_before = len(public_upstream.paths())
    start = datetime.now(UTC)
    status, info = go.download("example.com/hello@v1.0.0")
    assert status == 0, info
    assert info["Sum"] == mv.zip_hash() and info["GoModSum"] == mv.mod_hash()
    assert Path(info["Zip"]).read_bytes() == mv.zip
    forwarded = public_upstream.paths()[upstream_before:]
    rows = since(postgres, start, "example.com/hello")
    assert len(rows) == len(forwarded) >= 3  # .info, .mod, .zip at least
    assert {row["decision"] for row in rows} == {"allow"}
    assert {row["kind"] for row in rows} >= {"info", "mod", "zip"}


def test_uppercase_module_path_downloads(go: GoCommand, modules: Modules) -> None:
    status, info = go.download("example.com/Upper/Case@v1.0.0")
    assert status == 0, info
    assert info["Sum"] == modules["example.com/Upper/Case", "v1.0.0"].zip_hash()


def test_blacklisted_version_shows_the_policy_reason_to_the_developer(
    go: GoCommand, postgres: ThrowawayPostgres, public_upstream: UpstreamServer
) -> None:
    start = datetime.now(UTC)
    status, info = go.download("example.com/insecure@v1.0.1")
    assert status != 0
    error = info["Error"]
    assert "403 Forbidden" in error
    assert "server response: blocked by policy: example.com/insecure@v1.0.1" in error
    assert "CVE-2024-1234" in error
    rows = since(postgres, start, "example.com/insecure")
    # Go 1.24+ retries a refused https request once (cmd/go/internal/web/http.go): two records.
    assert [row["decision"] for row in rows] == ["deny", "deny"]
    assert not [p for p in public_upstream.paths() if "insecure/@v/v1.0.1.zip" in p]


def test_private_module_comes_from_the_private_upstream_only(
    go: GoCommand,
    modules: Modules,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
) -> None:
    status, info = go.download("corp.example.com/secret@v1.0.0")
    assert status == 0, info
    assert info["Sum"] == modules["corp.example.com/secret", "v1.0.0"].zip_hash()
    assert [p for p in private_upstream.paths() if p.endswith("secret/@v/v1.0.0.zip")]
    assert not [p for p in public_upstream.paths() if "corp.example.com" in p]


def test_private_module_without_gonosumdb_is_refused_with_a_hint(
    go: GoCommand, public_upstream: UpstreamServer
) -> None:
    go.env["GONOSUMDB"] = "example.com"
    status, info = go.download("corp.example.com/secret@v1.0.0")
    assert status != 0
    assert "GONOSUMDB" in info["Error"]
    assert not [p for p in public_upstream.paths() if "corp.example.com" in p]


def test_unauthenticated_go_command_is_refused(gateway: GatewayProcess, tmp_path: Path) -> None:
    go = GoCommand(gateway, tmp_path, token=None)
    status, info = go.download("example.com/hello@v1.1.0")
    assert status != 0
    assert "401 Unauthorized" in info["Error"]
    assert "authentication required" in info["Error"]


def test_go_get_of_a_branch_resolves_through_the_revision_query(
    go: GoCommand, postgres: ThrowawayPostgres
) -> None:
    consumer = go.home / "consumer"
    consumer.mkdir()
    assert go.run("mod", "init", "example.org/consumer", cwd=consumer).returncode == 0
    assert go.run("mod", "edit", "-go=1.22", cwd=consumer).returncode == 0
    start = datetime.now(UTC)
    done = go.run("get", "example.com/hello@master", cwd=consumer)
    assert done.returncode == 0, done.stderr
    assert "example.com/hello v1.1.0" in (consumer / "go.mod").read_text()
    queries = [r for r in since(postgres, start, "example.com/hello") if r["requested_version"]]
    assert [(r["requested_version"], r["version"]) for r in queries] == [("master", "v1.1.0")]


def test_a_blacklisted_version_is_hidden_so_latest_lands_on_an_allowed_one(
    go: GoCommand, postgres: ThrowawayPostgres
) -> None:
    """The newest version of example.com/insecure (v1.0.1) is blacklisted: the list the go
    command reads leaves it out, so `go list -m -versions` and `go get m@latest` see v1.0.0
    (issue 11, point 4: a blocked newest version must not break the module)."""
    listed = go.run("list", "-m", "-versions", "example.com/insecure")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["example.com/insecure", "v1.0.0"]
    consumer = go.home / "consumer"
    consumer.mkdir()
    assert go.run("mod", "init", "example.org/consumer", cwd=consumer).returncode == 0
    start = datetime.now(UTC)
    done = go.run("get", "example.com/insecure@latest", cwd=consumer)
    assert done.returncode == 0, done.stderr
    assert "example.com/insecure v1.0.0" in (consumer / "go.mod").read_text()
    lists = [r for r in since(postgres, start, "example.com/insecure") if r["kind"] == "list"]
    assert lists and all(r["reasons"] == ["hidden from the list: v1.0.1"] for r in lists)
