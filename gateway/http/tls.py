"""The server's TLS context: TLS 1.2 at least, TLS 1.3 preferred, AEAD suites only.

TLS 1.3 has nothing but AEAD suites with forward secrecy. For TLS 1.2 the list is cut to
ECDHE key exchange with AES-GCM or ChaCha20-Poly1305: no CBC suites (the Lucky-13 family of
padding oracles), no static-RSA key exchange (no forward secrecy), no finite-field DHE (its
groups are negotiated badly by old clients). The server's order wins, compression and
renegotiation are off. Every go release with modules (1.11 and later) offers ECDHE-AES-GCM.

    context = server_context(settings.tls)

With ``tls.client_cert`` optional or required, the context asks the client for a certificate
and accepts only one that chains to ``tls.client_ca_file`` (OpenSSL checks the signature,
the validity dates and the chain; a bad certificate fails the handshake, before any HTTP).
What was negotiated reaches the app as the ASGI TLS extension (``tls_extension``).
"""

import functools
import ssl
from typing import Any

from cryptography import x509

from ..errors import ConfigError
from ..settings import TlsSettings

# OpenSSL cipher-string syntax; applies to TLS 1.2 only (TLS 1.3 suites are set apart).
# "ECDHE" includes anonymous ECDH in OpenSSL's vocabulary, hence !aNULL.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
ALPN = ["http/1.1"]


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """The ``SSLContext`` the client-facing port serves with (certificate from ``tls``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    )
    context.set_alpn_protocols(ALPN)
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"tls.cert_file {tls.cert_file!r} / tls.key_file {tls.key_file!r}: "
            f"not a usable certificate and key ({exc})"
        ) from exc
    if tls.client_cert != "none":
        _ask_for_client_certificates(context, tls)
    return context


def _ask_for_client_certificates(context: ssl.SSLContext, tls: TlsSettings) -> None:
    try:
        context.load_verify_locations(cafile=tls.client_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"tls.client_ca_file {tls.client_ca_file!r}: "
            f"not a PEM bundle of CA certificates ({exc})"
        ) from exc
    if not context.get_ca_certs():
        raise ConfigError(f"tls.client_ca_file {tls.client_ca_file!r}: holds no CA certificate")
    # A server-side handshake verifies for OpenSSL's "ssl_client" purpose: a certificate
    # whose extended key usage is serverAuth only (the server's own, of the same CA) is no
    # client identity (tests/hardening/test_client_certificates.py).
    context.verify_mode = ssl.CERT_REQUIRED if tls.client_cert == "required" else ssl.CERT_OPTIONAL


TLS_EXTENSION = "tls"
"""The ASGI TLS extension's key in ``scope["extensions"]`` (the ASGI spec, "TLS")."""

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension of one connection, once its handshake is done (None: no TLS).

    ``client_cert_chain`` holds the client's certificate only: Python before 3.13 has no
    ``get_verified_chain``, and the leaf is what identity is read from. It is present only
    when the handshake verified it (``tls.client_cert`` optional or required), so
    ``client_cert_error`` is always None: a certificate that fails verification fails the
    handshake instead."""
    if ssl_object is None:
        return None
    leaf = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(leaf)] if leaf else []
    name = x509.load_der_x509_certificate(leaf).subject.rfc4514_string() if leaf else None
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": _cipher_suite_id(ssl_object.context, cipher[0]) if cipher else None,
    }


@functools.lru_cache(maxsize=64)  # a handful of suites per context: not a list per connection
def _cipher_suite_id(context: ssl.SSLContext, name: str) -> int | None:
    """The IANA number of the suite OpenSSL calls ``name`` (its id's low 16 bits)."""
    for suite in context.get_ciphers():
        if suite["name"] == name:
            return int(suite["id"]) & 0xFFFF
    return None


def client_context(ca_file: str, key: str) -> ssl.SSLContext:
    """A client TLS context trusting ``ca_file`` (the system's roots when empty), for
    modgate's own https calls (a remote OPA, a JWT issuer); ConfigError naming ``key``
    when the file is no PEM CA bundle."""
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"config key {key}: {ca_file!r} is no PEM CA bundle") from exc
