"""Every way the stock go command sends credentials, end to end (issue 10, point 6).

The go command (1.24+) takes credentials from GOAUTH: ``netrc`` (the default, reading
$NETRC or ~/.netrc and sending Basic auth) or a command line of the user's (any first word
but ``off``, ``netrc`` and ``git``: cmd/go/internal/auth/auth.go ``runGoAuth``), run with
the URL as its last argument, whose output names URL prefixes and the headers to send
there (cmd/go/internal/auth/userauth.go ``parseUserAuth``; ``go help goauth``). Both
are attached to https requests only (cmd/go/internal/web/http.go). Here a GitHub Actions
job's id_token (signed by a real https issuer on 127.0.0.1, shaped like GitHub's) goes
both ways, and an API token the netrc way, to a real `modgate serve`; the audit trail
says who each pull was.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.certs import DevPki
from tests.conftest import Modules, Tokens, gateway_env
from tests.support.audit import audit_rows
from tests.support.gateway import GatewayProcess
from tests.support.gomodules import go_env, go_mod_download
from tests.support.jwks import IssuerServer, SigningKey, github_claims
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.gocmd, pytest.mark.postgres, pytest.mark.opa]

AUDIENCE = "modgate-e2e"


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey.create("gh-e2e", "RS256")


@pytest.fixture(scope="module")
def idp(pki: DevPki, signing_key: SigningKey) -> Iterator[IssuerServer]:
    with IssuerServer(pki, signing_key) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, pki: DevPki, postgres: ThrowawayPostgres,
    opa_server: OpaServer, public_upstream: UpstreamServer, private_upstream: UpstreamServer,
    idp: IssuerServer,
) -> Iterator[GatewayProcess]:  # fmt: skip
    work = tmp_path_factory.mktemp("gateway-jwt")
    config = work / "modgate.toml"
    config.write_text(
        f"""
[[jwt.issuers]]
preset = "github"
issuer = "{idp.issuer}"
ca_file = "{idp.ca_file}"
audience = ["{AUDIENCE}"]
"""
    )
    env = gateway_env(pki, postgres, opa_server.url, public_upstream.url, private_upstream.url)
    with GatewayProcess(env, pki.ca_cert, work / "modgate.log", config=config) as process:
        yield process


def developer_env(gateway: GatewayProcess, home: Path, **auth: str) -> dict[str, str]:
    return go_env(
        GOPROXY=gateway.url,
        SSL_CERT_FILE=str(gateway.ca_file),
        GONOSUMDB="example.com,corp.example.com",
        GOMODCACHE=str(home / "modcache"),
        GOPATH=str(home / "gopath"),
        GOCACHE=str(home / "gocache"),
        GOFLAGS="-modcacherw",
        HOME=str(home),
        NETRC=str(home / "no-netrc"),
        **auth,
    )


def auth_command(home: Path, gateway: GatewayProcess, token: str) -> str:
    """A GOAUTH command as a CI job writes one: it prints modgate's URL and the header."""
    script = home / "modgate-auth"
    token_file = home / "id-token"
    token_file.write_text(token)
    script.write_text(
        "#!/bin/sh\n"
        "# GOAUTH output: URL lines, a blank line, header lines, a blank line\n"
        f"printf '%s\\n\\nAuthorization: Bearer %s\\n\\n' '{gateway.url}' "
        f"\"$(cat '{token_file}')\"\n"
    )
    script.chmod(stat.S_IRWXU)
    return str(script)  # GOAUTH is the command line itself (any other word than netrc, git, off)


def pulled_by(postgres: ThrowawayPostgres, start: datetime) -> set[tuple[str, str]]:
    rows = audit_rows(
        postgres.libpq_dsn(), "received_at >= $1 AND module = $2", start, "example.com/hello"
    )
    assert rows, "no audit record of the pull"
    return {(row["subject"], row["auth_method"]) for row in rows}


def download(env: dict[str, str], home: Path) -> tuple[int, dict[str, str], str]:
    done = go_mod_download("example.com/hello@v1.0.0", home, env)
    return done.returncode, json.loads(done.stdout or "{}"), done.stderr


def test_a_goauth_command_hands_the_ci_token_to_the_go_command(
    gateway: GatewayProcess, idp: IssuerServer, signing_key: SigningKey, modules: Modules,
    postgres: ThrowawayPostgres, tmp_path: Path,
) -> None:  # fmt: skip
    token = signing_key.sign(github_claims(idp.issuer, audience=AUDIENCE))
    env = developer_env(gateway, tmp_path, GOAUTH=auth_command(tmp_path, gateway, token))
    start = datetime.now(UTC)
    status, info, stderr = download(env, tmp_path)
    assert status == 0, (info, stderr)
    assert info["Sum"] == modules["example.com/hello", "v1.0.0"].zip_hash()
    assert pulled_by(postgres, start) == {("ci:github:acme/builder", "jwt")}


def test_a_netrc_line_carries_the_ci_token_as_its_password(
    gateway: GatewayProcess, idp: IssuerServer, signing_key: SigningKey,
    postgres: ThrowawayPostgres, tmp_path: Path,
) -> None:  # fmt: skip
    token = signing_key.sign(github_claims(idp.issuer, "acme/netrc", audience=AUDIENCE))
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1:{gateway.port} login ci password {token}\n")
    env = {**developer_env(gateway, tmp_path), "NETRC": str(netrc), "GOAUTH": "netrc"}
    start = datetime.now(UTC)
    status, info, stderr = download(env, tmp_path)
    assert status == 0, (info, stderr)
    assert pulled_by(postgres, start) == {("ci:github:acme/netrc", "jwt")}


def test_an_api_token_in_netrc_by_the_default_goauth(
    gateway: GatewayProcess, tokens: Tokens, postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1:{gateway.port} login alice password {tokens.alice}\n")
    env = {**developer_env(gateway, tmp_path), "NETRC": str(netrc)}
    env.pop("GOAUTH", None)  # unset: the go command's default is netrc
    start = datetime.now(UTC)
    status, info, stderr = download(env, tmp_path)
    assert status == 0, (info, stderr)
    assert pulled_by(postgres, start) == {("alice", "token")}


def test_an_expired_ci_token_shows_the_developer_why(
    gateway: GatewayProcess, idp: IssuerServer, signing_key: SigningKey, tmp_path: Path
) -> None:
    now = int(time.time())
    expired = github_claims(
        idp.issuer, audience=AUDIENCE, exp=now - 600, nbf=now - 900, iat=now - 900
    )
    env = developer_env(
        gateway, tmp_path, GOAUTH=auth_command(tmp_path, gateway, signing_key.sign(expired))
    )
    status, info, stderr = download(env, tmp_path)
    assert status != 0
    assert "the JWT expired at" in info.get("Error", "") + stderr
