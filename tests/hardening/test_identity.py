"""Credentials are never echoed, never ambiguous, and failures are cheap (hardening 7, 11, 12).

Each attack is sent to the real `modgate serve` over TLS, with a real PostgreSQL, OPA and
upstreams on 127.0.0.1. The rate-limit tests start their own gateway on their own database
in the session's PostgreSQL, so that its counters (``pg_stat_user_tables`` of
``api_tokens``) count that gateway's token lookups and nothing else, and so that the
clients of the session's gateway are never limited.
"""

from __future__ import annotations

import base64
import http.client
import secrets
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Tokens
from tests.support.audit import audit_rows
from tests.support.gateway import GatewayProcess
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

LIST = "/example.com/hello/@v/list"
MALFORMED = "mgt_5ec2e7_not_a_real_token_but_shaped_like_one"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def unknown_token() -> str:
    """A well-formed token whose id no store has: 64 random bits, as real ids are."""
    return f"mgt_{secrets.token_hex(8)}_{secrets.token_hex(32)}"


def record_of(
    postgres: ThrowawayPostgres, request_id: str, database: str = "modgate"
) -> dict[str, Any]:
    rows = audit_rows(postgres.libpq_dsn(database), "request_id = $1", request_id)
    assert len(rows) == 1
    return rows[0]


def shown_anywhere(response: httpx.Response) -> str:
    return response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


def secret_parts(token: str) -> list[str]:
    """The token and what follows its ``mgt_`` prefix: neither may be shown or stored."""
    return [token, token.removeprefix("mgt_")]


# -- 7. a credential is never echoed -------------------------------------------------------


@pytest.fixture(params=["valid", "malformed"])
def pasted(request: pytest.FixtureRequest, tokens: Tokens) -> str:
    """The token pasted in the wrong place: alice's real one, or one merely shaped like it."""
    return tokens.alice if request.param == "valid" else MALFORMED


@pytest.mark.parametrize("placement", ["basic-user-name", "bearer-scheme"])
def test_token_sent_in_the_wrong_header_field_is_never_echoed_or_stored(
    client: httpx.Client,
    postgres: ThrowawayPostgres,
    tokens: Tokens,
    pasted: str,
    placement: str,
) -> None:
    # given a token pasted as the Basic user name (.netrc `login <token> password <token>`),
    # or sent without its scheme (`Authorization: mgt_...`)
    if placement == "basic-user-name":
        headers = basic(pasted, tokens.alice)
    else:
        headers = {"Authorization": pasted}
    # when it reaches the gateway
    response = client.get(LIST, headers=headers)
    # then it is refused, and neither the answer nor the audit record repeats it
    assert response.status_code == 401
    row = record_of(postgres, response.headers["X-Request-Id"])
    assert row["error_code"] == "bad_credentials"
    stored = "\n".join(row["reasons"]) + "\n" + row["path"]
    for part in secret_parts(pasted):
        assert part not in shown_anywhere(response)
        assert part not in stored


def test_token_inside_the_path_is_never_echoed(
    client: httpx.Client, tokens: Tokens, pasted: str
) -> None:
    # given a token pasted into GOPROXY's path
    response = client.get(f"/{pasted}/@v/list", headers=bearer(tokens.bob))
    # then the 400 that names the malformed path shows it redacted
    assert response.status_code == 400
    assert "mgt_<redacted>" in response.text
    for part in secret_parts(pasted):
        assert part not in shown_anywhere(response)


@pytest.mark.xfail(
    strict=True,
    reason="the audit writer redacts stored text: lands with the lead's audit change",
)
def test_token_inside_the_path_is_never_stored_in_the_audit_record(
    client: httpx.Client, postgres: ThrowawayPostgres, tokens: Tokens, pasted: str
) -> None:
    response = client.get(f"/{pasted}/@v/list", headers=bearer(tokens.bob))
    row = record_of(postgres, response.headers["X-Request-Id"])
    stored = "\n".join(row["reasons"]) + "\n" + row["path"]
    for part in secret_parts(pasted):
        assert part not in stored


# -- 11. one credential per request ---------------------------------------------------------


@dataclass(frozen=True)
class RawAnswer:
    status: int
    body: str
    request_id: str


def raw_get(
    gateway: GatewayProcess, context: ssl.SSLContext, headers: list[tuple[str, str]]
) -> RawAnswer:
    """GET with the header lines exactly as given (http.client sends repeats as repeats)."""
    connection = http.client.HTTPSConnection("127.0.0.1", gateway.port, context=context, timeout=10)
    try:
        connection.putrequest("GET", LIST)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return RawAnswer(
            response.status, response.read().decode(), response.getheader("X-Request-Id", "")
        )
    finally:
        connection.close()


def test_two_authorization_headers_are_refused_with_400_and_audited(
    gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    public_upstream: UpstreamServer,
) -> None:
    # given alice's valid token first and a second credential after it
    asked_before = public_upstream.paths().count(LIST)
    headers = [
        ("Authorization", f"Bearer {tokens.alice}"),
        ("Authorization", f"Bearer {unknown_token()}"),
    ]
    # when both reach the gateway
    answer = raw_get(gateway, tls_context, headers)
    # then neither wins: the request is refused, recorded, and never forwarded
    assert answer.status == 400
    assert answer.body == "more than one Authorization header\n"
    row = record_of(postgres, answer.request_id)
    assert row["decision"] == "deny" and row["error_code"] == "duplicate_authorization"
    assert row["status"] == 400 and row["subject"] is None
    assert public_upstream.paths().count(LIST) == asked_before


@pytest.mark.parametrize("scheme", ["Bearer", "Basic"])
def test_two_credentials_folded_into_one_header_are_refused_with_400(
    client: httpx.Client, tokens: Tokens, postgres: ThrowawayPostgres, scheme: str
) -> None:
    # given two credentials joined by a comma, as a proxy folds repeated headers
    if scheme == "Bearer":
        value = f"Bearer {tokens.alice}, Bearer {tokens.bob}"
    else:
        alice, bob = basic("alice", tokens.alice), basic("bob", tokens.bob)
        value = f"{alice['Authorization']}, {bob['Authorization']}"
    # when they reach the gateway
    response = client.get(LIST, headers={"Authorization": value})
    # then they are refused like two headers
    assert response.status_code == 400
    assert response.text == "more than one credential in the Authorization header\n"
    row = record_of(postgres, response.headers["X-Request-Id"])
    assert row["error_code"] == "duplicate_authorization"
