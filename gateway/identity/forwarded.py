"""Identity behind a TLS-terminating front proxy: ``X-Forwarded-For`` and Envoy's
``X-Forwarded-Client-Cert``, believed only from ``server.trusted_proxies``.

When a load balancer or a service mesh terminates TLS in front of modgate, the client's
address and certificate reach modgate as headers of the proxy's request. Anyone can send
those headers, so they count only when the TCP peer is a configured trusted proxy:

- ``X-Forwarded-For``: the client is the right-most address that is not a trusted proxy
  (each proxy appends the address it received the request from; entries left of an
  untrusted one are whatever the client wrote). From an untrusted peer it is ignored: the
  client address is the peer, as without a proxy.
- ``X-Forwarded-Client-Cert`` (``identity.forwarded_client_cert = true``): the element the
  nearest proxy added (the last one) must carry ``Cert=`` (the URL-encoded PEM, Envoy's
  ``set_current_client_cert_details: {cert: true}``), issued directly by a CA of
  ``identity.forwarded_ca_file``; a ``Hash=`` in it must be the certificate's SHA-256. It
  then identifies the request like a client certificate of modgate's own handshake.
  From an untrusted peer, or when the setting is off, the header is a spoofing attempt:
  the request is refused 401 (``forwarded_identity_refused``) and audited, never
  identified by what the header says.
"""

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

XFCC = "x-forwarded-client-cert"
XFF = "x-forwarded-for"
MAX_FORWARDED_BYTES = 16 * 1024

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# One key=value pair of an XFCC element: a value is quoted (and may hold , ; =) or bare.
_PAIR = re.compile(r'\s*([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^,;"]*)\s*([,;]|$)')


class ForwardedError(Exception):
    """Why a forwarded header cannot be believed (the reason a refusal gives)."""


def parse_networks(entries: Sequence[str]) -> tuple[IpNetwork, ...]:
    """``10.0.0.0/8``, ``192.0.2.7``, ``2001:db8::/32``; ValueError for anything else."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.7:443
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ForwardedTrust:
    networks: tuple[IpNetwork, ...] = ()

    def trusts(self, address: str) -> bool:
        found = _address(address)
        return found is not None and any(found in network for network in self.networks)

    def client_address(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The client's address: the right-most X-Forwarded-For entry that is not a
        trusted proxy, when ``peer`` is one; else ``peer``."""
        if not self.trusts(peer) or not forwarded_for:
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # a malformed entry: nothing left of it can be believed
            if not self.trusts(str(address)):
                return str(address)
        return peer  # every hop is a trusted proxy: the left-most is as far as it goes


def xfcc_elements(value: str) -> list[dict[str, str]]:
    """The elements of an ``X-Forwarded-Client-Cert`` value, each as its key/value pairs
    (keys case-folded, quotes removed); ForwardedError when it does not parse."""
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = _PAIR.match(value, position)
        if match is None or match.end() == position:
            raise ForwardedError("X-Forwarded-Client-Cert does not parse")
        key, raw, separator = match.groups()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        current[key.lower()] = raw
        position = match.end()
        if separator != ";":
            elements.append(current)
            current = {}
    if current:
        elements.append(current)
    return elements


def forwarded_certificate(value: str, authorities: Sequence[x509.Certificate]) -> bytes:
    """The DER of the client certificate the nearest proxy forwarded in ``value``, checked
    to be issued by one of ``authorities``; ForwardedError otherwise."""
    if len(value) > MAX_FORWARDED_BYTES:
        raise ForwardedError("X-Forwarded-Client-Cert is too long")
    elements = xfcc_elements(value)
    if not elements or "cert" not in elements[-1]:
        raise ForwardedError(
            "X-Forwarded-Client-Cert carries no Cert= (the proxy must forward the certificate)"
        )
    element = elements[-1]
    try:
        cert = x509.load_pem_x509_certificate(unquote(element["cert"]).encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ForwardedError("X-Forwarded-Client-Cert's Cert= is no PEM certificate") from exc
    der = cert.public_bytes(serialization.Encoding.DER)
    expected = element.get("hash")
    if expected is not None and expected.lower() != hashlib.sha256(der).hexdigest():
        raise ForwardedError("X-Forwarded-Client-Cert's Hash= is not its certificate's")
    for authority in authorities:
        if authority.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(authority)
        except (InvalidSignature, ValueError, TypeError):
            continue
        return der
    raise ForwardedError(
        "the forwarded client certificate is not issued by a CA of identity.forwarded_ca_file"
    )
