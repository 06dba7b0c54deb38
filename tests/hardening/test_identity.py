"""Credentials are never echoed, never ambiguous, and failures are cheap (hardening 7, 11, 12).

Each attack is sent to the real `modgate serve` over TLS, with a real PostgreSQL, OPA and
upstreams on 127.0.0.1. The rate-limit tests start their own gateway on their own database
in the session's PostgreSQL, so that its counters (``pg_stat_user_tables`` of
``api_tokens``) count that gateway's token lookups and nothing else, and so that the
clients of the session's gateway are never limited.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import httpx
import pytest

from tests.conftest import Tokens
from tests.support.audit import audit_rows
from tests.support.postgres import ThrowawayPostgres

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
