"""The pull path over real TLS: `modgate serve` with a real OPA, PostgreSQL and upstreams.

Each test says who calls (anonymous, alice in developers, bob in contractors) and checks
both the answer and the audit record the gateway wrote for it.
"""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from tests.conftest import Modules, Tokens
from tests.support.audit import completed_row, only_row
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(login: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()}


def record_of(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, object]:
    return only_row(postgres.libpq_dsn(), response.headers["X-Request-Id"])


def wait_completed(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, object]:
    return completed_row(postgres.libpq_dsn(), response.headers["X-Request-Id"])


@pytest.mark.parametrize("kind", ["info", "mod", "zip"])
def test_token_holder_gets_module_files_byte_identical_and_audited(
    client: httpx.Client, tokens: Tokens, modules: Modules, postgres: ThrowawayPostgres, kind: str
) -> None:
    mv = modules["example.com/hello", "v1.0.0"]
    response = client.get(f"/example.com/hello/@v/v1.0.0.{kind}", headers=bearer(tokens.alice))
    assert response.status_code == 200
    expected = {"info": mv.info_json(), "mod": mv.mod, "zip": mv.zip}[kind]
    assert response.content == expected
    row = wait_completed(postgres, response)
    assert row["decision"] == "allow"
    assert row["subject"] == "alice" and row["auth_method"] == "token"
    assert row["module"] == "example.com/hello" and row["version"] == "v1.0.0"
    assert row["kind"] == kind and row["route"] == "public"
    assert row["status"] == 200 and row["bytes"] == len(expected)
    assert row["sha256"] == hashlib.sha256(expected).hexdigest()
    assert row["policy_revision"] and row["client_address"] == "127.0.0.1"


def test_list_and_latest_are_served_through_policy(
    client: httpx.Client, tokens: Tokens, postgres: ThrowawayPostgres
) -> None:
    listed = client.get("/example.com/hello/@v/list", headers=bearer(tokens.alice))
    assert listed.text.split() == ["v1.0.0", "v1.1.0"]
    latest = client.get("/example.com/hello/@latest", headers=bearer(tokens.alice))
    assert latest.json()["Version"] == "v1.1.0"
    assert record_of(postgres, latest)["version"] == "v1.1.0"


def test_uppercase_module_path_is_unescaped_for_policy_and_reescaped_upstream(
    client: httpx.Client,
    tokens: Tokens,
    modules: Modules,
    public_upstream: UpstreamServer,
    postgres: ThrowawayPostgres,
) -> None:
    response = client.get(
        "/example.com/%21upper/%21case/@v/v1.0.0.zip", headers=bearer(tokens.alice)
    )
    assert response.content == modules["example.com/Upper/Case", "v1.0.0"].zip
    assert record_of(postgres, response)["module"] == "example.com/Upper/Case"
    # re-escaped and percent-encoded exactly as the go command sends it
    assert "/example.com/%21upper/%21case/@v/v1.0.0.zip" in public_upstream.paths()


def test_token_as_basic_password_works_like_netrc(client: httpx.Client, tokens: Tokens) -> None:
    response = client.get("/example.com/hello/@v/list", headers=basic("alice", tokens.alice))
    assert response.status_code == 200


def test_basic_login_that_is_not_the_token_subject_is_refused(
    client: httpx.Client, tokens: Tokens, postgres: ThrowawayPostgres
) -> None:
    response = client.get("/example.com/hello/@v/list", headers=basic("mallory", tokens.alice))
    assert response.status_code == 401
    assert record_of(postgres, response)["error_code"] == "bad_credentials"


def test_anonymous_caller_gets_401_with_challenge_and_is_audited(
    client: httpx.Client, postgres: ThrowawayPostgres, public_upstream: UpstreamServer
) -> None:
    before = len(public_upstream.paths())
    response = client.get("/example.com/hello/@v/v1.0.0.info")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "authentication required" in response.text
    row = record_of(postgres, response)
    assert row["decision"] == "deny" and row["auth_method"] == "anonymous"
    assert len(public_upstream.paths()) == before


@pytest.mark.parametrize(
    "credential",
    [
        "mgt_0123456789abcdef_" + "0" * 64,
        "mgt_garbage",
        "not-a-modgate-token",
    ],
    ids=["forged", "malformed", "foreign"],
)
def test_bad_token_is_refused_with_401_and_audited(
    client: httpx.Client, postgres: ThrowawayPostgres, credential: str
) -> None:
    response = client.get("/example.com/hello/@v/list", headers=bearer(credential))
    assert response.status_code == 401
    row = record_of(postgres, response)
    assert row["decision"] == "deny" and row["error_code"] == "bad_credentials"


def test_blacklisted_version_is_refused_with_its_reason(
    client: httpx.Client,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    public_upstream: UpstreamServer,
) -> None:
    before = len(public_upstream.paths())
    response = client.get("/example.com/insecure/@v/v1.0.1.zip", headers=bearer(tokens.alice))
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("blocked by policy: example.com/insecure@v1.0.1")
    assert "CVE-2024-1234" in response.text and "SEC-42" in response.text
    row = record_of(postgres, response)
    assert row["decision"] == "deny" and row["status"] == 403
    assert any("CVE-2024-1234" in r for r in row["reasons"])
    assert len(public_upstream.paths()) == before


def test_blacklisted_version_go_mod_stays_readable_for_graph_resolution(
    client: httpx.Client, tokens: Tokens
) -> None:
    response = client.get("/example.com/insecure/@v/v1.0.1.mod", headers=bearer(tokens.alice))
    assert response.status_code == 200


def test_revision_query_is_resolved_upstream_and_decided_again(
    client: httpx.Client, tokens: Tokens, postgres: ThrowawayPostgres
) -> None:
    response = client.get("/example.com/hello/@v/master.info", headers=bearer(tokens.alice))
    assert response.json()["Version"] == "v1.1.0"
    row = record_of(postgres, response)
    assert row["version"] == "v1.1.0" and row["requested_version"] == "master"


def test_revision_query_resolving_to_a_blacklisted_version_is_refused(
    client: httpx.Client, tokens: Tokens
) -> None:
    response = client.get("/example.com/insecure/@v/main.info", headers=bearer(tokens.alice))
    assert response.status_code == 403
    assert "example.com/insecure@v1.0.1" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/example.com/%2e%2e/etc/@v/list",
        "/example.com/m/@v/v1.0.0.tar",
        "/Example.com/m/@v/list",
        "/example.com/m/@v/master.zip",
    ],
)
def test_malformed_path_gets_400_and_never_reaches_an_upstream(
    client: httpx.Client,
    tokens: Tokens,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
    path: str,
) -> None:
    before = (len(public_upstream.paths()), len(private_upstream.paths()))
    response = client.get(path, headers=bearer(tokens.alice))
    assert response.status_code == 400
    assert len(response.text.strip().splitlines()) == 1
    assert (len(public_upstream.paths()), len(private_upstream.paths())) == before


def test_private_module_comes_only_from_the_private_upstream(
    client: httpx.Client,
    tokens: Tokens,
    modules: Modules,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
    postgres: ThrowawayPostgres,
) -> None:
    response = client.get("/corp.example.com/secret/@v/v1.0.0.zip", headers=bearer(tokens.alice))
    assert response.content == modules["corp.example.com/secret", "v1.0.0"].zip
    assert "/corp.example.com/secret/@v/v1.0.0.zip" in private_upstream.paths()
    assert not [p for p in public_upstream.paths() if "corp.example.com" in p]
    row = wait_completed(postgres, response)
    assert row["route"] == "private" and row["upstream"] == private_upstream.url


def test_private_module_is_refused_to_a_group_not_listed(
    client: httpx.Client, tokens: Tokens, private_upstream: UpstreamServer
) -> None:
    before = len(private_upstream.paths())
    response = client.get("/corp.example.com/secret/@v/v1.0.0.info", headers=bearer(tokens.bob))
    assert response.status_code == 403
    assert "private" in response.text
    assert len(private_upstream.paths()) == before


def test_sumdb_is_forwarded_byte_for_byte(
    client: httpx.Client, tokens: Tokens, modules: Modules
) -> None:
    root = modules.public_root / "sumdb" / "sum.golang.org"
    supported = client.get("/sumdb/sum.golang.org/supported", headers=bearer(tokens.alice))
    assert supported.status_code == 200
    lookup = client.get(
        "/sumdb/sum.golang.org/lookup/example.com/hello@v1.0.0", headers=bearer(tokens.alice)
    )
    assert lookup.content == (root / "lookup" / "example.com" / "hello@v1.0.0").read_bytes()
    tile = client.get("/sumdb/sum.golang.org/tile/8/0/000", headers=bearer(tokens.alice))
    assert tile.content == (root / "tile" / "8" / "0" / "000").read_bytes()


def test_sumdb_lookup_of_a_private_path_is_refused_and_never_forwarded(
    client: httpx.Client,
    tokens: Tokens,
    public_upstream: UpstreamServer,
    postgres: ThrowawayPostgres,
) -> None:
    response = client.get(
        "/sumdb/sum.golang.org/lookup/corp.example.com/secret@v1.0.0",
        headers=bearer(tokens.alice),
    )
    assert response.status_code == 403
    assert "GONOSUMDB" in response.text
    assert not [p for p in public_upstream.paths() if "corp.example.com" in p]
    assert record_of(postgres, response)["decision"] == "deny"


def test_unknown_checksum_database_is_403_so_the_go_command_stops_here(
    client: httpx.Client, tokens: Tokens
) -> None:
    response = client.get("/sumdb/sum.evil.example/supported", headers=bearer(tokens.alice))
    assert response.status_code == 403
    assert 'checksum database "sum.evil.example" is not served by modgate' in response.text


def test_upstream_404_is_passed_through_unchanged(client: httpx.Client, tokens: Tokens) -> None:
    response = client.get("/example.com/absent/@v/list", headers=bearer(tokens.alice))
    assert response.status_code == 404


def test_revoked_token_is_refused(client: httpx.Client, postgres: ThrowawayPostgres) -> None:
    from tests.conftest import modgate_cli

    token = modgate_cli(
        "token",
        "create",
        "--subject",
        "carol",
        "--group",
        "developers",
        database_url=postgres.dsn(),
    ).strip()
    assert client.get("/example.com/hello/@v/list", headers=bearer(token)).status_code == 200
    token_id = token.split("_")[1]
    modgate_cli("token", "revoke", token_id, database_url=postgres.dsn())
    response = client.get("/example.com/hello/@v/list", headers=bearer(token))
    assert response.status_code == 401
    assert "revoked" in response.text


def test_health_and_readiness_need_no_credentials(client: httpx.Client) -> None:
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/readyz").text == "ready\n"


def test_only_get_is_part_of_the_protocol(
    client: httpx.Client, tokens: Tokens, public_upstream: UpstreamServer
) -> None:
    before = len(public_upstream.paths())
    response = client.head("/example.com/hello/@v/v1.0.0.zip", headers=bearer(tokens.alice))
    assert response.status_code == 405
    assert client.post("/example.com/hello/@v/list").status_code == 405
    assert len(public_upstream.paths()) == before


def test_a_blocked_latest_is_answered_with_the_newest_allowed_version(
    client: httpx.Client, tokens: Tokens, postgres: ThrowawayPostgres
) -> None:
    """The upstream resolves @latest to v1.0.1, which is blacklisted: modgate answers with
    the newest allowed version of the list, v1.0.0, and records what it did (issue 11,
    point 4)."""
    latest = client.get("/example.com/insecure/@latest", headers=bearer(tokens.alice))
    assert latest.status_code == 200, latest.text
    assert latest.json()["Version"] == "v1.0.0"
    row = record_of(postgres, latest)
    assert (row["decision"], row["version"], row["status"]) == ("allow", "v1.0.0", 200)
    assert row["reasons"] == [
        "@latest v1.0.1 refused (example.com/insecure@v1.0.1 is blacklisted: CVE-2024-1234: "
        "remote code execution (ticket SEC-42)): answered with v1.0.0"
    ]
    listed = client.get("/example.com/insecure/@v/list", headers=bearer(tokens.alice))
    assert listed.text.split() == ["v1.0.0"]
