"""A failed TLS handshake's reason, as the bounded label of
modgate_tls_handshake_failures_total: the errors OpenSSL raises for each refusal."""

import asyncio
import ssl

import pytest

from gateway.http.protocol import handshake_failure


def verification_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] unknown ca")
    return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (None, "timeout"),
        (TimeoutError(), "timeout"),
        (asyncio.CancelledError(), "timeout"),
        (verification_error(), "client_certificate_refused"),
        (
            ssl.SSLError(1, "[SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE] peer did not"),
            "client_certificate_missing",
        ),
        (
            ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert"),
            "client_certificate_missing",
        ),
        (ssl.SSLError(1, "[SSL: UNSUPPORTED_PROTOCOL] unsupported protocol"), "protocol_version"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "protocol_version"),
        (
            ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] bad certificate"),
            "client_certificate_refused",
        ),
        (ssl.SSLError(1, "[SSL: HTTP_REQUEST] http request"), "other"),
        (ConnectionResetError(), "other"),
    ],
)
def test_each_failure_has_its_reason(error: BaseException | None, reason: str) -> None:
    assert handshake_failure(error) == reason
