"""Forwarded headers: which X-Forwarded-For hop is the client, how Envoy's
X-Forwarded-Client-Cert is read, and what a forwarded certificate must prove."""

import hashlib
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.identity.forwarded import (
    ForwardedError,
    ForwardedTrust,
    forwarded_certificate,
    parse_networks,
    xfcc_elements,
)
from tests.support.x509 import TestAuthority

TRUST = ForwardedTrust(parse_networks(["10.0.0.0/8", "2001:db8::/32"]))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("10.0.0.5", ["203.0.113.9"], "203.0.113.9"),
        ("10.0.0.5", ["198.51.100.1, 203.0.113.9, 10.0.0.4"], "203.0.113.9"),
        ("10.0.0.5", ["198.51.100.1", "203.0.113.9"], "203.0.113.9"),  # two header lines
        ("10.0.0.5", ["[2001:db9::7]:4711"], "2001:db9::7"),
        ("10.0.0.5", ["203.0.113.9:4711"], "203.0.113.9"),
        ("10.0.0.5", ["unknown, 203.0.113.9"], "203.0.113.9"),
        ("10.0.0.5", ["203.0.113.9, garbage"], "10.0.0.5"),  # nothing left of it believed
        ("10.0.0.5", ["10.0.0.3"], "10.0.0.5"),  # only proxies
        ("192.0.2.1", ["203.0.113.9"], "192.0.2.1"),  # an untrusted peer: ignored
        ("10.0.0.5", [], "10.0.0.5"),
    ],
)
def test_the_client_is_the_right_most_untrusted_hop(
    peer: str, forwarded_for: list[str], client: str
) -> None:
    assert TRUST.client_address(peer, forwarded_for) == client


def test_xfcc_elements_and_quoted_values() -> None:
    value = 'By=spiffe://a;Hash=ab;Subject="CN=x,OU=a;b";URI=spiffe://c,By=spiffe://d;Hash=cd'
    assert xfcc_elements(value) == [
        {"by": "spiffe://a", "hash": "ab", "subject": "CN=x,OU=a;b", "uri": "spiffe://c"},
        {"by": "spiffe://d", "hash": "cd"},
    ]
    with pytest.raises(ForwardedError):
        xfcc_elements('Subject="unterminated')


@pytest.fixture(scope="module")
def authority() -> TestAuthority:
    return TestAuthority.create("mesh CA")


def header(authority: TestAuthority, *, digest: str | None = None) -> tuple[str, bytes]:
    cert, _ = authority.certificate("builder")
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = quote(cert.public_bytes(serialization.Encoding.PEM).decode())
    return f'Hash={digest or hashlib.sha256(der).hexdigest()};Cert="{pem}"', der


def test_the_nearest_proxys_certificate_is_taken(authority: TestAuthority) -> None:
    value, der = header(authority)
    assert forwarded_certificate(value, [authority.cert]) == der
    older, _ = header(authority)
    assert forwarded_certificate(f"{older},{value}", [authority.cert]) == der


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda a: "By=spiffe://a;Hash=00", "carries no Cert="),
        (lambda a: 'Cert="not%20a%20certificate"', "no PEM certificate"),
        (lambda a: header(a, digest="00" * 32)[0], "Hash= is not its certificate's"),
        (lambda a: header(TestAuthority.create("mesh CA"))[0], "not issued by a CA"),
    ],
)
def test_a_forwarded_certificate_must_prove_itself(
    authority: TestAuthority, make: object, message: str
) -> None:
    with pytest.raises(ForwardedError, match=message):
        forwarded_certificate(make(authority), [authority.cert])  # type: ignore[operator]
