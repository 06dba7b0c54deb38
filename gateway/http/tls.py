"""The server's TLS context: TLS 1.2 at least, TLS 1.3 preferred, AEAD suites only.

TLS 1.3 has nothing but AEAD suites with forward secrecy. For TLS 1.2 the list is cut to
ECDHE key exchange with AES-GCM or ChaCha20-Poly1305: no CBC suites (the Lucky-13 family of
padding oracles), no static-RSA key exchange (no forward secrecy), no finite-field DHE (its
groups are negotiated badly by old clients). The server's order wins, compression and
renegotiation are off. Every go release with modules (1.11 and later) offers ECDHE-AES-GCM.

    context = server_context(settings.tls)
"""

import ssl

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
    return context
