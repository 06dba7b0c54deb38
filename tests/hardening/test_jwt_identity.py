"""JWTs on the real gateway (issue 10, points 3, 4 and 7): a CI job's id_token names the
pipeline in the policy input and the audit record; each attack is refused 401 with its own
code, audited, and nothing reaches an upstream.

`modgate serve` runs on the session's PostgreSQL, OPA and upstreams with a config file of
``[[jwt.issuers]]``: a ``github`` preset whose issuer is a real https server on 127.0.0.1
(``tests/support/jwks.py``: discovery document and key set shaped like GitHub's), and a
company SSO issuer whose keys are a JWKS file. Keys are rotated under the running gateway.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.certs import DevPki
from tests.hardening.conftest import ServeOwn
from tests.support.audit import audit_rows
from tests.support.audit import stored_input as audit_input
from tests.support.gateway import GatewayProcess
from tests.support.jwks import (
    IssuerServer,
    SigningKey,
    claims,
    github_claims,
    gitlab_claims,
    jwks,
)
from tests.support.metrics import scrape
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

MOD = "/example.com/hello/@v/v1.0.0.mod"
PRIVATE = "/corp.example.com/secret/@v/list"
SSO = "https://sso.corp.example"


@pytest.fixture(scope="module")
def github_key() -> SigningKey:
    return SigningKey.create("gh-2026-11", "RS256")


@pytest.fixture(scope="module")
def sso_key() -> SigningKey:
    return SigningKey.create("sso-1", "ES256")


@pytest.fixture
def idp(pki: DevPki, github_key: SigningKey) -> Iterator[IssuerServer]:
    with IssuerServer(pki, github_key) as server:
        yield server


@pytest.fixture(scope="module")
def gitlab_key() -> SigningKey:
    return SigningKey.create("gl-1", "RS256")


@pytest.fixture
def gitlab_idp(pki: DevPki, gitlab_key: SigningKey) -> Iterator[IssuerServer]:
    """Shaped like a GitLab instance: its keys where GitLab's discovery names them."""
    with IssuerServer(pki, gitlab_key, jwks_path="/oauth/discovery/keys") as server:
        yield server


@pytest.fixture
def sso_jwks(tmp_path: Path, sso_key: SigningKey) -> Path:
    path = tmp_path / "sso-jwks.json"
    path.write_text(json.dumps(jwks(sso_key)))
    return path


def config(
    tmp_path: Path, idp: IssuerServer, sso_jwks: Path, gitlab: IssuerServer | None = None
) -> Path:
    path = tmp_path / "modgate.toml"
    path.write_text(
        f"""
[jwt]
unknown_kid_interval_s = 1.0

[[jwt.issuers]]
preset = "github"
issuer = "{idp.issuer}"
ca_file = "{idp.ca_file}"
audience = ["modgate-test"]

[[jwt.issuers]]
name = "sso"
issuer = "{SSO}"
jwks_file = "{sso_jwks}"
audience = ["modgate"]
subject_prefix = "sso:"
groups_claim = "groups"
"""
        + (
            f"""
[[jwt.issuers]]
preset = "gitlab"
issuer = "{gitlab.issuer}"
ca_file = "{gitlab.ca_file}"
audience = ["modgate-test"]
"""
            if gitlab is not None
            else ""
        )
    )
    return path


@pytest.fixture
def gateway(
    serve_own: ServeOwn, tmp_path: Path, idp: IssuerServer, sso_jwks: Path,
    gitlab_idp: IssuerServer,
) -> Iterator[GatewayProcess]:  # fmt: skip
    with serve_own(config=config(tmp_path, idp, sso_jwks, gitlab_idp)) as process:
        yield process


def get(
    gateway: GatewayProcess, pki: DevPki, path: str, token: str, *, basic: bool = False
) -> httpx.Response:
    if basic:  # the .netrc way: any login, the token as password
        auth = "Basic " + base64.b64encode(f"ci:{token}".encode()).decode()
    else:
        auth = f"Bearer {token}"
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    with httpx.Client(base_url=gateway.url, verify=context, timeout=10) as client:
        return client.get(path, headers={"Authorization": auth})


def record(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, Any]:
    rows = audit_rows(postgres.libpq_dsn(), "request_id = $1", response.headers["X-Request-Id"])
    assert len(rows) == 1
    return rows[0]


def stored_input(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, Any]:
    return audit_input(postgres.libpq_dsn(), response.headers["X-Request-Id"])


def test_a_github_job_token_names_the_pipeline_in_the_input_and_the_record(
    gateway: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres, idp: IssuerServer,
    github_key: SigningKey,
) -> None:  # fmt: skip
    token = github_key.sign(github_claims(idp.issuer, audience="modgate-test"))
    for basic in (False, True):
        response = get(gateway, pki, MOD, token, basic=basic)
        assert response.status_code == 200, response.text
        row = record(postgres, response)
        assert (row["subject"], row["groups"], row["auth_method"]) == (
            "ci:github:acme/builder",
            ["ci"],
            "jwt",
        )
    details = stored_input(postgres, response)["identity"]["details"]
    assert details["provider"] == "github"
    assert details["repository"] == "acme/builder"
    assert details["sha"] == "2b1f8e5a0c9d4e3f7a6b5c4d3e2f1a0b9c8d7e6f"
    assert details["run_id"] == "9123456789" and details["ref"] == "refs/heads/main"
    assert idp.requests("/.well-known/openid-configuration") == 1  # keys fetched once
    fetches = ("modgate_jwt_key_fetches_total", (("issuer", "github"), ("result", "ok")))
    assert scrape(gateway.metrics_url)[fetches] == 1


def test_a_gitlab_job_token_names_the_pipeline_too(
    gateway: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres,
    gitlab_idp: IssuerServer, gitlab_key: SigningKey,
) -> None:  # fmt: skip
    token = gitlab_key.sign(gitlab_claims(gitlab_idp.issuer, audience="modgate-test"))
    response = get(gateway, pki, MOD, token, basic=True)  # the .netrc way GitLab jobs use
    assert response.status_code == 200, response.text
    row = record(postgres, response)
    assert (row["subject"], row["auth_method"]) == ("ci:gitlab:acme/platform/builder", "jwt")
    details = stored_input(postgres, response)["identity"]["details"]
    assert (details["provider"], details["repository"], details["run_id"]) == (
        "gitlab",
        "acme/platform/builder",
        "555",
    )
    assert gitlab_idp.requests("/oauth/discovery/keys") == 1


def test_an_sso_token_gets_its_groups_and_reaches_private_paths(
    gateway: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres, sso_key: SigningKey
) -> None:
    token = sso_key.sign(claims(SSO, sub="alice", groups=["developers"]))
    response = get(gateway, pki, PRIVATE, token)
    assert response.status_code == 200, response.text
    row = record(postgres, response)
    assert (row["subject"], row["groups"], row["route"]) == ("sso:alice", ["developers"], "private")


def forged_none(issuer: str) -> str:
    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    head = part({"alg": "none", "typ": "JWT", "kid": "gh-2026-11"})
    return f"{head}.{part(github_claims(issuer, audience='modgate-test'))}."


def test_each_bad_token_is_refused_audited_and_never_forwarded(
    gateway: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres, idp: IssuerServer,
    github_key: SigningKey, public_upstream: UpstreamServer, private_upstream: UpstreamServer,
) -> None:  # fmt: skip
    now = int(time.time())
    iss = idp.issuer
    good = github_key.sign(github_claims(iss, audience="modgate-test"))
    head, _, signature = good.split(".")
    other_body = (
        base64.urlsafe_b64encode(
            json.dumps(github_claims(iss, "acme/release", audience="modgate-test")).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    stranger = SigningKey.create("gh-unknown")
    cases = {
        "jwt_algorithm_refused": forged_none(iss),
        "jwt_bad_signature": f"{head}.{other_body}.{signature}",
        "jwt_expired": github_key.sign(
            github_claims(iss, audience="modgate-test", exp=now - 600, iat=now - 900, nbf=now - 900)
        ),
        "jwt_not_yet_valid": github_key.sign(
            github_claims(iss, audience="modgate-test", nbf=now + 600, exp=now + 900)
        ),
        "jwt_untrusted_issuer": github_key.sign(
            github_claims("https://evil.example", audience="modgate-test")
        ),
        "jwt_wrong_audience": github_key.sign(github_claims(iss, audience="another-service")),
        "jwt_unknown_key": stranger.sign(github_claims(iss, audience="modgate-test")),
        "jwt_malformed": "eyJhbGciOiJSUzI1NiJ9.Zm9vYmFy.c2lnbmF0dXJl",  # payload is no JSON
        "bad_credentials": good + "." + "A" * 9000,  # oversized: refused before any parsing
    }
    before = len(public_upstream.requests) + len(private_upstream.requests)
    for code, token in cases.items():
        response = get(gateway, pki, MOD, token)
        assert response.status_code == 401, (code, response.text)
        assert response.headers.get("WWW-Authenticate"), code
        row = record(postgres, response)
        assert (row["error_code"], row["decision"]) == (code, "deny"), (code, row)
        assert row["reasons"] and row["subject"] is None
        assert token not in response.text and token not in json.dumps(row["reasons"])
    assert len(public_upstream.requests) + len(private_upstream.requests) == before


def test_a_rotated_key_is_followed_and_the_withdrawn_one_refused(
    gateway: GatewayProcess, pki: DevPki, idp: IssuerServer, github_key: SigningKey
) -> None:
    old = github_key.sign(github_claims(idp.issuer, audience="modgate-test"))
    assert get(gateway, pki, MOD, old).status_code == 200
    rotated = SigningKey.create("gh-2026-12", "RS256")
    idp.publish(rotated)
    time.sleep(1.1)  # the test's unknown_kid_interval_s: the new kid may refetch now
    new = rotated.sign(github_claims(idp.issuer, "acme/other", audience="modgate-test"))
    response = get(gateway, pki, MOD, new)
    assert response.status_code == 200, response.text
    refused = get(gateway, pki, MOD, old)  # cached, but its key is no longer published
    assert refused.status_code == 401 and "signing key" in refused.text


def test_an_issuer_that_is_down_refuses_with_503_and_a_reason(
    serve_own: ServeOwn, tmp_path: Path, idp: IssuerServer, sso_jwks: Path, pki: DevPki,
    postgres: ThrowawayPostgres, github_key: SigningKey,
) -> None:  # fmt: skip
    idp.fail_with(503)
    with serve_own(config=config(tmp_path, idp, sso_jwks)) as gateway:
        token = github_key.sign(github_claims(idp.issuer, audience="modgate-test"))
        response = get(gateway, pki, MOD, token)
        failed = ("modgate_jwt_key_fetches_total", (("issuer", "github"), ("result", "failed")))
        assert scrape(gateway.metrics_url)[failed] == 1
    assert response.status_code == 503
    assert "keys of JWT issuer github unavailable" in response.text
    assert record(postgres, response)["error_code"] == "identity_unavailable"


def test_a_ci_job_reaches_private_modules_only_from_a_protected_ref(
    gateway: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres, idp: IssuerServer,
    github_key: SigningKey,
) -> None:  # fmt: skip
    """The shipped policy's ci.private_refs (policies/modgate/ci.rego), on real identities."""
    main = github_key.sign(github_claims(idp.issuer, audience="modgate-test"))
    response = get(gateway, pki, PRIVATE, main)
    assert response.status_code == 200, response.text
    assert record(postgres, response)["route"] == "private"
    feature = github_key.sign(
        github_claims(idp.issuer, audience="modgate-test", ref="refs/heads/feature")
    )
    response = get(gateway, pki, PRIVATE, feature)
    assert response.status_code == 403
    assert "CI jobs may fetch it only from refs/heads/main" in response.text
    assert "(this job runs on refs/heads/feature)" in record(postgres, response)["reasons"][0]
