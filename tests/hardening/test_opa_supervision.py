"""A remote OPA gets modgate's token, and modgate trusts only its certificate.

An OPA beside the gateway that accepts anyone's requests also accepts anyone's policy
writes, so compose.yaml runs it with --authentication=token --authorization=basic and
deploy/opa/authz.rego. These tests run that OPA for real, and the real `modgate serve`
over TLS with real PostgreSQL and upstreams in front of it.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.certs import DevPki
from gateway.errors import PolicyError
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine
from tests.conftest import REPO, Tokens, gateway_env
from tests.support.audit import audit_rows
from tests.support.gateway import GatewayProcess
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

ALLOWED = "/example.com/hello/@v/v1.0.0.info"
BLACKLISTED = "/example.com/insecure/@v/v1.0.1.info"  # example.com/insecure@v1.0.1, SEC-42


@pytest.fixture
def alice(tokens: Tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.alice}"}


def client_for(gateway: GatewayProcess, pki: DevPki) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    return httpx.Client(base_url=gateway.url, verify=context, timeout=30)


# --- a remote OPA that wants a token -----------------------------------------------------

OPA_TOKEN = "opa-token-for-the-tests-0123456789abcdef0123"


@pytest.fixture(scope="module")
def token_opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    """OPA as compose.yaml runs it: token authentication, deploy/opa/authz.rego."""
    work = tmp_path_factory.mktemp("token-opa")
    token_file = work / "opa-token"
    token_file.write_text(f"{OPA_TOKEN}\n")
    server = OpaServer(
        REPO / "policies",
        log_path=work / "opa.log",
        extra_args=(
            "--authentication=token",
            "--authorization=basic",
            f"--set-file=modgate.gateway_token={token_file}",
            str(REPO / "deploy/opa"),
        ),
        token=OPA_TOKEN,
    )
    with server:
        yield server


def remote_gateway(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa: OpaServer,
    public: UpstreamServer,
    token: str | None,
) -> GatewayProcess:
    env = gateway_env(pki, postgres, opa.url, public.url, "")
    del env["MODGATE_UPSTREAM_PRIVATE"]
    if token is not None:
        token_file = tmp_path / "opa-token"
        token_file.write_text(f"{token}\n")
        token_file.chmod(0o600)
        env["MODGATE_POLICY_OPA_TOKEN_FILE"] = str(token_file)
    return GatewayProcess(env, pki.ca_cert, tmp_path / "modgate.log")


def test_remote_opa_with_modgate_token_decides(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    token_opa: OpaServer,
    public_upstream: UpstreamServer,
    alice: dict[str, str],
) -> None:
    # given an OPA that wants a token, and modgate given that token in a file
    gateway = remote_gateway(tmp_path, pki, postgres, token_opa, public_upstream, OPA_TOKEN)
    with gateway, client_for(gateway, pki) as http:
        # when modules are asked for, then the policy decides them
        assert http.get(ALLOWED, headers=alice).status_code == 200
        denied = http.get(BLACKLISTED, headers=alice)
        assert denied.status_code == 403 and "SEC-42" in denied.text
        assert http.get("/readyz").status_code == 200
    # and the token is nowhere in modgate's log
    assert OPA_TOKEN not in gateway.log_path.read_text()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "policy engine refused modgate (HTTP 401)"),
        ("a-wrong-token-0123456789abcdef0123456789", "policy engine refused modgate's token"),
    ],
    ids=["no-token", "wrong-token"],
)
def test_remote_opa_refusing_modgate_credentials_is_a_503_with_a_reason(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    token_opa: OpaServer,
    public_upstream: UpstreamServer,
    alice: dict[str, str],
    token: str | None,
    reason: str,
) -> None:
    # given an OPA that wants a token, and modgate without it (or with a wrong one)
    gateway = remote_gateway(tmp_path, pki, postgres, token_opa, public_upstream, token)
    with gateway, client_for(gateway, pki) as http:
        # when a module is asked for
        response = http.get(ALLOWED, headers=alice)
        # then it is refused, saying why, and recorded as policy_unavailable
        assert response.status_code == 503
        assert reason in response.text
        assert http.get("/readyz").status_code == 503
    rows = audit_rows(postgres.libpq_dsn(), "request_id = $1", response.headers["X-Request-Id"])
    assert [row["error_code"] for row in rows] == ["policy_unavailable"]


async def test_remote_opa_over_https_is_verified_against_policy_opa_ca_file(
    tmp_path: Path, pki: DevPki
) -> None:
    # given an OPA serving https with a certificate of a private CA
    tls = (pki.server_cert, pki.server_key, pki.ca_cert)
    with OpaServer(REPO / "policies", log_path=tmp_path / "opa.log", tls=tls) as opa:
        trusted = OpaEndpoint.for_url(opa.url, ca_file=str(pki.ca_cert))
        untrusted = OpaEndpoint.for_url(opa.url)
        # when modgate asks it with that CA, then it gets decisions
        async with OpaPolicyEngine(trusted, "modgate/decision", 2, 0) as engine:
            decision = await engine.document("modgate/revision")
            assert isinstance(decision, str) and decision
        # and without it (the system's CAs) nothing is taken from that server
        async with OpaPolicyEngine(untrusted, "modgate/decision", 2, 0) as engine:
            with pytest.raises(PolicyError, match=r"certificate .* policy\.opa_ca_file"):
                await engine.document("modgate/revision")
