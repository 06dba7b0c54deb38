"""JWTs of trusted issuers: each attack is refused with its own code, a valid token names
its subject, groups and details, and one token pays for one signature check.

Keys are real (RSA, EC P-256, Ed25519 made with `cryptography`), tokens are signed by
pyjwt, and key sets come from a JWKS file or from a real https server on 127.0.0.1
(``tests/support/jwks.py``). Attacks pyjwt refuses to produce (``alg: none`` is allowed to
encode, HS256 keyed with a public key is not) are built byte by byte, as an attacker would.
"""

import base64
import dataclasses
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from gateway.certs import DevPki
from gateway.errors import (
    GatewayError,
    IdentityUnavailableError,
    JwtAlgorithmError,
    JwtAudienceError,
    JwtClaimError,
    JwtExpiredError,
    JwtIssuerError,
    JwtMalformedError,
    JwtNotYetValidError,
    JwtSignatureError,
    JwtUnknownKeyError,
)
from gateway.identity.base import Identity
from gateway.identity.jwks import DiscoveredKeys, FileKeys, KeySet, UrlKeys
from gateway.identity.jwts import Issuer, JwtIdentifier
from gateway.identity.presets import PRESETS
from gateway.identity.proof import RequestProof
from gateway.settings import JWT_ALGORITHMS, JwtIssuerSettings
from tests.support.jwks import IssuerServer, SigningKey, claims, github_claims, gitlab_claims, jwks

ISS = "https://sso.corp.example"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> RequestProof:
    return RequestProof((f"Bearer {token}",), "192.0.2.1")


def basic(token: str, login: str = "ci") -> RequestProof:
    value = base64.b64encode(f"{login}:{token}".encode()).decode()
    return RequestProof((f"Basic {value}",), "192.0.2.1")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token as an attacker builds it, whatever a library would allow."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.create("rsa-1", "RS256")


@pytest.fixture(scope="module")
def keys(rsa_key: SigningKey) -> dict[str, SigningKey]:
    return {
        "RS256": rsa_key,
        "PS256": SigningKey.create("rsa-pss", "PS256"),
        "ES256": SigningKey.create("ec-1", "ES256"),
        "EdDSA": SigningKey.create("ed-1", "EdDSA"),
    }


def settings(**overrides: Any) -> JwtIssuerSettings:
    values: dict[str, Any] = {
        "name": "sso",
        "issuer": ISS,
        "audience": ("modgate",),
        "algorithms": JWT_ALGORITHMS,
        "groups_claim": "groups",
        "subject_prefix": "sso:",
        "detail_claims": ("email", "team=org_team"),
    }
    return JwtIssuerSettings(**{**values, **overrides})


def file_issuer(tmp_path: Path, *signing: SigningKey, **overrides: Any) -> Issuer:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(*signing)))
    return Issuer(settings(**overrides), keys=KeySet("sso", FileKeys(path), 300, 30))


@pytest.fixture
def identifier(tmp_path: Path, keys: dict[str, SigningKey]) -> JwtIdentifier:
    return JwtIdentifier([file_issuer(tmp_path, *keys.values())], cache_entries=100)


async def refused(identifier: JwtIdentifier, token: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await identifier.identify(bearer(token))
    return caught.value


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
async def test_each_algorithm_verifies_and_names_the_identity(
    identifier: JwtIdentifier, keys: dict[str, SigningKey], alg: str
) -> None:
    token = keys[alg].sign(
        claims(ISS, sub="alice", groups=["developers", "release"], email="a@corp.example")
    )
    identity = await identifier.identify(bearer(token))
    assert identity == Identity(
        "sso:alice",
        ("developers", "release"),
        "jwt",
        (("issuer", ISS), ("issuer_name", "sso"), ("email", "a@corp.example")),
    )


async def test_the_basic_password_is_read_as_a_jwt_whatever_the_login(
    identifier: JwtIdentifier, rsa_key: SigningKey
) -> None:
    token = rsa_key.sign(claims(ISS, sub="alice"))
    identity = await identifier.identify(basic(token, login="oauth2"))
    assert identity is not None and identity.subject == "sso:alice"


async def test_what_is_no_jwt_is_left_to_the_other_identifiers(identifier: JwtIdentifier) -> None:
    assert await identifier.identify(bearer("mgt_0123")) is None
    assert await identifier.identify(RequestProof((), "192.0.2.1")) is None


async def test_alg_none_is_refused(identifier: JwtIdentifier) -> None:
    token = forged({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims(ISS, sub="mallory"))
    error = await refused(identifier, token)
    assert isinstance(error, JwtAlgorithmError) and error.code == "jwt_algorithm_refused"


async def test_rs256_to_hs256_key_confusion_is_refused(
    identifier: JwtIdentifier, rsa_key: SigningKey
) -> None:
    """The classic attack: HMAC the token with the issuer's *public* key as the secret."""
    public_pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    body = claims(ISS, sub="mallory")
    unsigned = forged(header, body).rsplit(".", 1)[0]
    signature = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    error = await refused(identifier, f"{unsigned}.{b64(signature)}")
    assert isinstance(error, JwtAlgorithmError)


async def test_an_alg_that_does_not_fit_its_key_is_refused(
    tmp_path: Path, keys: dict[str, SigningKey]
) -> None:
    """ES256 named in the header, an RSA key named by the kid: never verified as either."""
    identifier = JwtIdentifier([file_issuer(tmp_path, *keys.values())], 100)
    es = keys["ES256"]
    token = dataclasses.replace(es, kid="rsa-1").sign(claims(ISS, sub="mallory"))
    assert isinstance(await refused(identifier, token), JwtAlgorithmError)


async def test_a_tampered_token_is_refused(identifier: JwtIdentifier, rsa_key: SigningKey) -> None:
    head, _, signature = rsa_key.sign(claims(ISS, sub="alice")).split(".")
    promoted = b64(json.dumps(claims(ISS, sub="admin", groups=["modgate-operators"])).encode())
    error = await refused(identifier, f"{head}.{promoted}.{signature}")
    assert isinstance(error, JwtSignatureError) and error.code == "jwt_bad_signature"
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    token = rsa_key.sign(claims(ISS, sub="alice")).rsplit(".", 1)[0] + "." + flipped
    assert isinstance(await refused(identifier, token), JwtSignatureError)


async def test_expired_and_not_yet_valid_are_refused_outside_the_leeway(
    identifier: JwtIdentifier, rsa_key: SigningKey
) -> None:
    now = int(time.time())
    expired = rsa_key.sign(claims(ISS, sub="a", exp=now - 120, iat=now - 600, nbf=now - 600))
    error = await refused(identifier, expired)
    assert isinstance(error, JwtExpiredError) and "expired at" in error.reason
    early = rsa_key.sign(claims(ISS, sub="a", nbf=now + 600, exp=now + 900))
    assert isinstance(await refused(identifier, early), JwtNotYetValidError)
    within = rsa_key.sign(claims(ISS, sub="a", exp=now - 10, iat=now - 300, nbf=now - 300))
    assert await identifier.identify(bearer(within)) is not None  # 10 s late, 30 s leeway


async def test_wrong_issuer_and_audience_are_refused(
    identifier: JwtIdentifier, rsa_key: SigningKey
) -> None:
    other = rsa_key.sign(claims("https://evil.example", sub="a"))
    error = await refused(identifier, other)
    assert isinstance(error, JwtIssuerError) and "evil" not in error.reason
    audience = rsa_key.sign(claims(ISS, audience="another-service", sub="a"))
    assert isinstance(await refused(identifier, audience), JwtAudienceError)


async def test_required_claims_and_usable_names(
    identifier: JwtIdentifier, rsa_key: SigningKey
) -> None:
    no_exp = claims(ISS, sub="a")
    del no_exp["exp"]
    error = await refused(identifier, rsa_key.sign(no_exp))
    assert isinstance(error, JwtClaimError) and "exp" in error.reason
    for bad in ({"sub": ""}, {"sub": "a\nb"}, {"sub": ["a"]}, {"sub": "a", "groups": {"x": 1}}):
        without = claims(ISS)
        assert isinstance(
            await refused(identifier, rsa_key.sign({**without, **bad})), JwtClaimError
        )
    garbage = await refused(identifier, "eyJhbGciOi.eyJpc3MiOi.c2ln")
    assert isinstance(garbage, JwtMalformedError)


async def test_an_unknown_kid_is_refused(identifier: JwtIdentifier) -> None:
    stranger = SigningKey.create("rsa-unknown")
    error = await refused(identifier, stranger.sign(claims(ISS, sub="a")))
    assert isinstance(error, JwtUnknownKeyError) and error.status == 401


async def test_one_token_pays_for_one_verification(
    identifier: JwtIdentifier, rsa_key: SigningKey
) -> None:
    token = rsa_key.sign(claims(ISS, sub="alice"))
    for _ in range(50):
        assert await identifier.identify(bearer(token)) is not None
    assert identifier.verifications == 1


async def test_a_cached_token_of_a_withdrawn_key_is_refused(
    tmp_path: Path, rsa_key: SigningKey
) -> None:
    """The JWKS file drops the key (the issuer's answer to a leak): its tokens stop working
    within a second, cached or not."""
    clock = Clock()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(rsa_key)))
    key_set = KeySet("sso", FileKeys(path), 300, 30, clock=clock)
    identifier = JwtIdentifier([Issuer(settings(), keys=key_set)], 100)
    token = rsa_key.sign(claims(ISS, sub="alice"))
    assert await identifier.identify(bearer(token)) is not None
    replacement = SigningKey.create("rsa-2")
    path.write_text(json.dumps(jwks(replacement)) + "\n")
    clock.now += 1.5
    assert await identifier.identify(bearer(replacement.sign(claims(ISS, sub="b")))) is not None
    assert isinstance(await refused(identifier, token), JwtUnknownKeyError)


async def test_hs256_only_with_the_configured_secret(tmp_path: Path, rsa_key: SigningKey) -> None:
    secret = b"s" * 48
    issuer = Issuer(settings(algorithms=("HS256",)), secret=secret)
    identifier = JwtIdentifier([issuer], 100)
    good = jwt.encode(claims(ISS, sub="alice"), secret, algorithm="HS256")
    assert (await identifier.identify(bearer(good))) is not None
    assert isinstance(
        await refused(identifier, rsa_key.sign(claims(ISS, sub="a"))), JwtAlgorithmError
    )
    wrong = jwt.encode(claims(ISS, sub="alice"), b"t" * 48, algorithm="HS256")
    assert isinstance(await refused(identifier, wrong), JwtSignatureError)


def preset(name: str, issuer: str, jwks_file: Path) -> JwtIssuerSettings:
    values = {**PRESETS[name], "issuer": issuer, "audience": ("modgate",)}
    values.pop("discovery")
    return JwtIssuerSettings(preset=name, jwks_file=str(jwks_file), **values)


@pytest.mark.parametrize(
    ("name", "make_claims", "subject", "expected"),
    [
        (
            "github",
            github_claims,
            "ci:github:acme/builder",
            {
                "provider": "github",
                "repository": "acme/builder",
                "ref": "refs/heads/main",
                "sha": "2b1f8e5a0c9d4e3f7a6b5c4d3e2f1a0b9c8d7e6f",
                "workflow": "acme/builder/.github/workflows/build.yml@refs/heads/main",
                "run_id": "9123456789",
                "event": "push",
                "actor": "octocat",
            },
        ),
        (
            "gitlab",
            gitlab_claims,
            "ci:gitlab:acme/platform/builder",
            {
                "provider": "gitlab",
                "repository": "acme/platform/builder",
                "ref": "main",
                "ref_protected": "true",
                "job": "777",
                "run_id": "555",
                "event": "push",
                "actor": "alice",
            },
        ),
    ],
)
async def test_ci_presets_trace_the_pipeline(
    tmp_path: Path,
    rsa_key: SigningKey,
    name: str,
    make_claims: Any,
    subject: str,
    expected: dict[str, str],
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(rsa_key)))
    issuer = Issuer(preset(name, ISS, path), keys=KeySet(name, FileKeys(path), 300, 30))
    identity = await JwtIdentifier([issuer], 100).identify(bearer(rsa_key.sign(make_claims(ISS))))
    assert identity is not None
    assert (identity.subject, identity.groups, identity.method) == (subject, ("ci",), "jwt")
    details = dict(identity.details)
    assert details.items() >= expected.items(), details
    assert details["issuer_name"] == name and "token_id" in details


# -- key sets fetched over https ----------------------------------------------------------


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def idp(pki: DevPki, rsa_key: SigningKey) -> Iterator[IssuerServer]:
    with IssuerServer(pki, rsa_key) as server:
        yield server


def url_identifier(
    idp: IssuerServer, session: aiohttp.ClientSession, clock: Clock, *, discovery: bool = False
) -> tuple[JwtIdentifier, KeySet]:
    context = ssl.create_default_context(cafile=str(idp.ca_file))
    source = (
        DiscoveredKeys(session, idp.issuer, context, 2.0)
        if discovery
        else UrlKeys(session, idp.jwks_url, context, 2.0)
    )
    key_set = KeySet("idp", source, refresh_s=300, min_interval_s=30, clock=clock)
    return JwtIdentifier([Issuer(settings(issuer=idp.issuer), keys=key_set)], 100), key_set


async def test_a_flood_of_unknown_kids_fetches_once_per_interval(
    idp: IssuerServer, session: aiohttp.ClientSession, rsa_key: SigningKey
) -> None:
    clock = Clock()
    identifier, key_set = url_identifier(idp, session, clock)
    assert await identifier.identify(bearer(rsa_key.sign(claims(idp.issuer, sub="a"))))
    assert key_set.fetches == 1
    clock.now += 31  # the keys were fetched long enough ago: one unknown kid may refetch
    for number in range(200):
        stranger = SigningKey(f"made-up-{number}", "RS256", rsa_key.private)
        assert isinstance(
            await refused(identifier, stranger.sign(claims(idp.issuer, sub="m"))),
            JwtUnknownKeyError,
        )
        clock.now += 0.1  # 200 tokens over 20 s: still within one 30 s interval
    assert key_set.fetches == 2 and idp.requests("/jwks.json") == 2


async def test_a_rotation_is_followed_without_a_restart(
    idp: IssuerServer, session: aiohttp.ClientSession, rsa_key: SigningKey
) -> None:
    clock = Clock()
    identifier, key_set = url_identifier(idp, session, clock, discovery=True)
    assert await identifier.identify(bearer(rsa_key.sign(claims(idp.issuer, sub="a"))))
    rotated = SigningKey.create("rsa-2026-12")
    idp.publish(rotated)  # the old key withdrawn, a new one published
    clock.now += 31  # past the interval: the unknown kid triggers a refresh
    identity = await identifier.identify(bearer(rotated.sign(claims(idp.issuer, sub="b"))))
    assert identity is not None and identity.subject == "sso:b"
    assert idp.requests("/.well-known/openid-configuration") == 2
    clock.now += 301  # the scheduled refresh also finds the old key gone
    with pytest.raises(JwtUnknownKeyError):
        await identifier.identify(bearer(rsa_key.sign(claims(idp.issuer, sub="c"))))
    assert key_set.fetches == 3


async def test_an_issuer_that_is_down_fails_closed_then_keeps_its_last_keys(
    idp: IssuerServer, session: aiohttp.ClientSession, rsa_key: SigningKey
) -> None:
    clock = Clock()
    identifier, key_set = url_identifier(idp, session, clock)
    token = rsa_key.sign(claims(idp.issuer, sub="a"))
    idp.fail_with(503)
    error = await refused(identifier, token)
    assert isinstance(error, IdentityUnavailableError) and error.status == 503
    assert "answered 503" in error.reason
    await refused(identifier, token)  # within the interval: not fetched again
    assert key_set.fetches == 1
    idp.fail_with(200)
    clock.now += 31
    assert await identifier.identify(bearer(token)) is not None
    idp.fail_with(500)
    clock.now += 301  # the scheduled refresh fails: the keys it had keep serving
    fresh = rsa_key.sign(claims(idp.issuer, sub="b"))
    assert await identifier.identify(bearer(fresh)) is not None
    assert key_set.fetches == 3


async def test_a_discovery_document_naming_another_issuer_is_refused(
    idp: IssuerServer, session: aiohttp.ClientSession, rsa_key: SigningKey
) -> None:
    idp.name_issuer("https://evil.example")
    identifier, _ = url_identifier(idp, session, Clock(), discovery=True)
    error = await refused(identifier, rsa_key.sign(claims(idp.issuer, sub="a")))
    assert isinstance(error, IdentityUnavailableError) and "another issuer" in error.reason


async def test_last_keys_serve_an_outage_until_they_are_too_old(
    idp: IssuerServer, session: aiohttp.ClientSession, rsa_key: SigningKey
) -> None:
    clock = Clock()
    context = ssl.create_default_context(cafile=str(idp.ca_file))
    key_set = KeySet(
        "idp",
        UrlKeys(session, idp.jwks_url, context, 2.0),
        refresh_s=300,
        min_interval_s=30,
        max_age_s=3600,
        clock=clock,
    )
    identifier = JwtIdentifier([Issuer(settings(issuer=idp.issuer), keys=key_set)], 100)
    token = rsa_key.sign(claims(idp.issuer, sub="a", lifetime_s=7200))
    assert await identifier.identify(bearer(token)) is not None
    idp.fail_with(503)
    clock.now += 3000  # refreshes fail; the keys are 50 minutes old
    assert await identifier.identify(bearer(token)) is not None
    clock.now += 700  # over an hour since the last good fetch: cached or not, refused
    error = await refused(identifier, token)
    assert isinstance(error, IdentityUnavailableError) and "jwt.keys_max_age_s" in error.reason
