"""Reading the Authorization header: one credential, in the shapes the go command sends,
and refusals that never repeat what was sent."""

import base64

import pytest

from gateway.errors import DuplicateAuthorizationError, IdentityError
from gateway.identity.base import Credentials
from gateway.identity.headers import parse_authorization, single_authorization

TOKEN = "mgt_0123456789abcdef_" + "a" * 64


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "credentials"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (f"Bearer {TOKEN}", Credentials(secret=TOKEN)),
        (f"bearer   {TOKEN} ", Credentials(secret=TOKEN)),
        (basic("alice", TOKEN), Credentials(secret=TOKEN, login="alice")),
        (basic("", TOKEN), Credentials(secret=TOKEN, login="")),
    ],
    ids=["absent", "empty", "blank", "bearer", "bearer-case-and-spaces", "basic", "basic-no-login"],
)
def test_the_shapes_the_go_command_sends_are_read(
    header: str | None, credentials: Credentials | None
) -> None:
    assert parse_authorization(header) == credentials


def test_one_authorization_value_is_the_credential() -> None:
    assert single_authorization([f"Bearer {TOKEN}"]) == f"Bearer {TOKEN}"
    assert single_authorization([]) is None


@pytest.mark.parametrize(
    "values",
    [
        [f"Bearer {TOKEN}", "Bearer mgt_forged"],
        [f"Bearer {TOKEN}", ""],
        [basic("alice", TOKEN), f"Bearer {TOKEN}"],
    ],
    ids=["two-bearer", "one-empty", "basic-and-bearer"],
)
def test_more_than_one_authorization_header_is_refused_with_400(values: list[str]) -> None:
    with pytest.raises(DuplicateAuthorizationError) as refused:
        single_authorization(values)
    assert refused.value.status == 400
    assert refused.value.code == "duplicate_authorization"
    assert refused.value.reason == "more than one Authorization header"


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}, Bearer mgt_other",
        f"Bearer {TOKEN},Bearer mgt_other",
        f"{basic('alice', TOKEN)}, {basic('bob', TOKEN)}",
    ],
    ids=["bearer-folded", "bearer-folded-no-space", "basic-folded"],
)
def test_two_credentials_folded_into_one_header_are_refused_with_400(header: str) -> None:
    with pytest.raises(DuplicateAuthorizationError) as refused:
        parse_authorization(header)
    assert refused.value.reason == "more than one credential in the Authorization header"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (TOKEN, "Authorization header without a scheme: use Bearer or Basic"),
        (f"{TOKEN} {TOKEN}", "unsupported Authorization scheme: use Bearer or Basic"),
        ("Token " + TOKEN, "unsupported Authorization scheme: use Bearer or Basic"),
        ('DIGEST username="mgt_x"', "unsupported Authorization scheme Digest: use Bearer or Basic"),
        ("Bearer", "empty Bearer credentials"),
        ("Basic " + TOKEN, "malformed Basic credentials"),
        (
            "Basic " + base64.b64encode(TOKEN.encode()).decode(),
            "Basic credentials need a password (the API token)",
        ),
    ],
    ids=[
        "bare-token",
        "token-as-scheme",
        "unknown-scheme",
        "known-scheme",
        "empty",
        "not-base64",
        "no-colon",
    ],
)
def test_refusals_name_the_problem_without_repeating_the_credential(
    header: str, reason: str
) -> None:
    with pytest.raises(IdentityError) as refused:
        parse_authorization(header)
    assert refused.value.status == 401
    assert refused.value.reason == reason
    assert "mgt_" not in refused.value.reason
