"""Reading the Authorization header: one credential, in the shapes the go command sends,
and refusals that never repeat what was sent; the RequestProof that carries it (with the
client's address and certificate chain) to every identifier."""

import base64

import pytest

from gateway.errors import DuplicateAuthorizationError, IdentityError, TooManyFailuresError
from gateway.identity.base import ANONYMOUS, Credentials, Identity
from gateway.identity.headers import parse_authorization, single_authorization
from gateway.identity.identify import identify
from gateway.identity.proof import RequestProof
from gateway.identity.ratelimit import FailedAuthLimiter

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


# --- RequestProof: what a request presents, read once however many identifiers ask -------


def proof(*authorizations: str, certificates: tuple[bytes, ...] = ()) -> RequestProof:
    return RequestProof(authorizations, "192.0.2.1", certificates)


@pytest.mark.parametrize(
    ("values", "presents"),
    [
        ((), False),
        (("",), False),
        (("   ",), False),
        ((f"Bearer {TOKEN}",), True),
        (("Token x",), True),  # malformed is still something to prove (and be refused for)
    ],
    ids=["none", "empty", "blank", "bearer", "malformed"],
)
def test_a_request_presents_credentials_only_with_a_non_blank_header(
    values: tuple[str, ...], presents: bool
) -> None:
    assert proof(*values).presents_anything is presents


def test_a_client_certificate_alone_is_something_to_prove() -> None:
    assert proof(certificates=(b"0\x82der",)).presents_anything
    assert proof(certificates=(b"0\x82der",)).credentials is None


def test_the_proof_reads_its_credentials_from_the_one_header() -> None:
    assert proof(basic("alice", TOKEN)).credentials == Credentials(secret=TOKEN, login="alice")
    assert proof().credentials is None


def test_a_proof_with_two_headers_is_refused_whenever_it_is_read() -> None:
    two = proof(f"Bearer {TOKEN}", f"Bearer {TOKEN}")
    for _ in range(2):
        with pytest.raises(DuplicateAuthorizationError):
            two.presents_anything  # noqa: B018 (the property is what raises)
        with pytest.raises(DuplicateAuthorizationError):
            two.credentials  # noqa: B018


def test_a_malformed_header_is_refused_again_on_every_read() -> None:
    bad = proof("Basic " + TOKEN)
    for _ in range(2):
        with pytest.raises(IdentityError, match="malformed Basic credentials"):
            bad.credentials  # noqa: B018


class _Counting:
    """An identifier that proves nothing and counts how often it was asked."""

    def __init__(self) -> None:
        self.asked: list[RequestProof] = []

    async def identify(self, presented: RequestProof) -> Identity | None:
        self.asked.append(presented)
        return None


async def test_identify_without_credentials_is_anonymous_and_asks_no_identifier() -> None:
    counting = _Counting()
    limiter = FailedAuthLimiter(per_minute=1)
    assert await identify(proof(""), [counting], limiter) == ANONYMOUS
    assert counting.asked == [] and len(limiter) == 0


async def test_identify_charges_a_malformed_header_before_any_identifier_sees_it() -> None:
    counting = _Counting()
    limiter = FailedAuthLimiter(per_minute=1)
    with pytest.raises(IdentityError):
        await identify(proof("Token x"), [counting], limiter)
    assert counting.asked == []
    with pytest.raises(TooManyFailuresError):  # the budget of one is spent
        await identify(proof(f"Bearer {TOKEN}"), [counting], limiter)


async def test_identify_hands_every_identifier_the_whole_proof() -> None:
    counting = _Counting()
    presented = proof(f"Bearer {TOKEN}", certificates=(b"leaf",))
    with pytest.raises(IdentityError, match="credentials not recognised"):
        await identify(presented, [counting, counting], FailedAuthLimiter(per_minute=10))
    assert counting.asked == [presented, presented]


async def test_a_certificate_no_identifier_reads_is_anonymous_not_a_refusal() -> None:
    counting = _Counting()
    presented = proof(certificates=(b"leaf",))
    assert await identify(presented, [counting], FailedAuthLimiter(per_minute=1)) == ANONYMOUS
    assert counting.asked == [presented]
