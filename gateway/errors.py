"""The gateway's errors: each carries an HTTP status, a public reason and a stable code.

    GatewayError
    ├── BadRequestError          400  the request is not a GOPROXY/sumdb request we accept
    │   ├── MalformedPathError        a module path or version fails x/mod's rules
    │   ├── DuplicateAuthorizationError  two Authorization headers, or two credentials in one
    │   └── MethodNotAllowedError 405 anything but GET (the protocol is GET only)
    ├── NotFoundError            404  no such endpoint (or an unknown checksum database,
    │                                 when sumdb.unknown_status = 404)
    ├── SumdbNotServedError      403  a checksum database modgate does not serve
    ├── IdentityError            401  credentials were presented and are wrong
    │   ├── IdentityUnavailableError 503  the token store or an issuer's keys could not be read
    │   ├── CertificateRevokedError       the client certificate is on its CA's CRL
    │   ├── JwtRejectedError              a JWT that does not verify (one code per reason)
    │   ├── ForwardedIdentityError        X-Forwarded-Client-Cert not from a trusted proxy
    │   └── TooManyFailuresError     429  this client sent too many bad credentials lately
    ├── PolicyError              503  no decision could be had from the policy engine
    │   ├── PolicyUnreachableError    OPA could not be asked: down, timing out, refusing modgate
    │   ├── PolicyUndefinedError      OPA answered, but the policy defines no such document
    │   └── PolicyMalformedError      OPA answered something that is no decision: a broken policy
    ├── AuditError               503  the audit store could not make the decision durable
    ├── UpstreamError            502  no upstream in the list gave a usable answer
    │   └── UpstreamTimeoutError 504  the upstream did not answer in time
    ├── PrivateLeakError         403  a request would send a private path to a public upstream
    └── ConfigError                   bad settings at start-up (never an HTTP answer)

The ``reason`` is what the go command prints to the developer, so it is one short line;
the ``code`` is stable snake_case, used in the audit record and as a metric label.
"""

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequestError(GatewayError):
    status = 400
    code = "bad_request"


class MalformedPathError(BadRequestError):
    code = "malformed_path"


class DuplicateAuthorizationError(BadRequestError):
    """Two Authorization headers, or two credentials folded into one: which one a proxy
    in front of us, the audit record and the policy would each believe is ambiguous."""

    code = "duplicate_authorization"


class MethodNotAllowedError(BadRequestError):
    status = 405
    code = "method_not_allowed"


class NotFoundError(GatewayError):
    status = 404
    code = "not_found"


class SumdbNotServedError(GatewayError):
    """403, not 404: after a 404 for ``/sumdb/<name>/supported`` the go command asks the
    database directly, around modgate (cmd/go/internal/modfetch/sumdb.go ``initBase``)."""

    status = 403
    code = "sumdb_not_served"


class IdentityError(GatewayError):
    status = 401
    code = "bad_credentials"


class IdentityUnavailableError(IdentityError):
    """The token store (or key set) could not be read: refused, but not as a bad token."""

    status = 503
    code = "identity_unavailable"


class CertificateRevokedError(IdentityError):
    """The verified client certificate is on the client CA's revocation list."""

    code = "certificate_revoked"


class JwtRejectedError(IdentityError):
    """A JWT was presented and is refused; each subclass names why, as its audit code."""

    code = "jwt_rejected"


class JwtMalformedError(JwtRejectedError):
    code = "jwt_malformed"


class JwtAlgorithmError(JwtRejectedError):
    """``alg`` is none, or not one the issuer is configured for (key confusion)."""

    code = "jwt_algorithm_refused"


class JwtSignatureError(JwtRejectedError):
    code = "jwt_bad_signature"


class JwtExpiredError(JwtRejectedError):
    code = "jwt_expired"


class JwtNotYetValidError(JwtRejectedError):
    code = "jwt_not_yet_valid"


class JwtIssuerError(JwtRejectedError):
    code = "jwt_untrusted_issuer"


class JwtAudienceError(JwtRejectedError):
    code = "jwt_wrong_audience"


class JwtUnknownKeyError(JwtRejectedError):
    """Signed with a key id the issuer's key set does not hold, even after a refresh."""

    code = "jwt_unknown_key"


class JwtClaimError(JwtRejectedError):
    """A required claim is missing, or the subject or groups claim has an unusable value."""

    code = "jwt_bad_claims"


class ForwardedIdentityError(IdentityError):
    """X-Forwarded-Client-Cert from an address that is not a trusted proxy (a spoofing
    attempt), or a forwarded certificate that does not verify."""

    code = "forwarded_identity_refused"


class TooManyFailuresError(IdentityError):
    """Refused without a look at the token store: the client's budget of bad credentials
    is spent. ``retry_after_s`` goes out as the ``Retry-After`` header."""

    status = 429
    code = "too_many_failures"

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PolicyError(GatewayError):
    """Never raised itself: one of the three below says which side failed, so an operator
    tells "OPA is down" (unreachable) from "the policy is broken" (undefined, malformed)."""

    status = 503
    code = "policy_unavailable"


class PolicyUnreachableError(PolicyError):
    """OPA gave no answer: not listening, too slow, 502/503/504, a TLS certificate or a
    token it refused. Retrying (or fixing the connection settings) may help."""

    code = "policy_unreachable"


class PolicyUndefinedError(PolicyError):
    """OPA answered, but the policy defines no such document (``{}`` with no ``result``):
    the modgate policy is not loaded, or the decision path names another rule."""

    code = "policy_undefined"


class PolicyMalformedError(PolicyError):
    """OPA answered something that is not the documented decision (a mistyped field, no
    JSON, an evaluation error): the policy is broken, OPA itself is up."""

    code = "policy_malformed"


class AuditError(GatewayError):
    status = 503
    code = "audit_unavailable"


class UpstreamError(GatewayError):
    status = 502
    code = "upstream_failed"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"


class PrivateLeakError(GatewayError):
    status = 403
    code = "private_path_refused"


class ConfigError(GatewayError):
    code = "config_invalid"
