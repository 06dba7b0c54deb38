"""JWT issuers of a test's own: signing keys made with `cryptography`, tokens signed with
pyjwt, and a real https server on 127.0.0.1 serving the key set and an OpenID discovery
document shaped like GitHub's and GitLab's (the stand-in for a remote identity provider,
the one part that cannot run here).

The server's key set can be replaced while it runs (a rotation), and it counts what it
was asked, so tests see how often modgate fetched keys.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.certs import DevPki

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private key of an issuer, its key id and the ``alg`` it signs with."""

    kid: str
    alg: str
    private: PrivateKey

    @classmethod
    def create(cls, kid: str, alg: str = "RS256") -> SigningKey:
        private: PrivateKey
        if alg in ("RS256", "PS256"):
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(alg)
        return cls(kid, alg, private)

    def public_jwk(self, *, with_alg: bool = True) -> dict[str, Any]:
        public = self.private.public_key()
        jwk: dict[str, Any]
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        jwk.update(kid=self.kid, use="sig")
        if with_alg:
            jwk["alg"] = self.alg
        return jwk

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


def claims(
    issuer: str, audience: str = "modgate", lifetime_s: int = 300, **extra: Any
) -> dict[str, Any]:
    """A token's claims: issued now, valid ``lifetime_s``, for ``audience``."""
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        **extra,
    }


def github_claims(issuer: str, repository: str = "acme/builder", **extra: Any) -> dict[str, Any]:
    """Claims shaped like a GitHub Actions id_token's (the OIDC reference's example);
    ``extra`` overrides any of them (``ref="refs/heads/feature"``)."""
    owner = repository.split("/")[0]
    shaped = {
        "sub": f"repo:{repository}:ref:refs/heads/main",
        "jti": "8d7c1a52-7f0e-4d0b-9b1c-0e5f2f3c9a11",
        "repository": repository,
        "repository_id": "690121",
        "repository_owner": owner,
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "sha": "2b1f8e5a0c9d4e3f7a6b5c4d3e2f1a0b9c8d7e6f",
        "workflow": "build",
        "workflow_ref": f"{repository}/.github/workflows/build.yml@refs/heads/main",
        "job_workflow_ref": f"{repository}/.github/workflows/build.yml@refs/heads/main",
        "run_id": "9123456789",
        "run_attempt": "1",
        "event_name": "push",
        "actor": "octocat",
        "runner_environment": "github-hosted",
    }
    return claims(issuer, **{**shaped, **extra})


def gitlab_claims(
    issuer: str, project: str = "acme/platform/builder", **extra: Any
) -> dict[str, Any]:
    """Claims shaped like a GitLab CI id_token's."""
    return claims(
        issuer,
        sub=f"project_path:{project}:ref_type:branch:ref:main",
        jti="5f0c2a1e-3b4d-4c6e-8f9a-1b2c3d4e5f60",
        namespace_path=project.rsplit("/", 1)[0],
        project_path=project,
        project_id="4242",
        ref="main",
        ref_type="branch",
        ref_protected="true",
        sha="7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b",
        ci_config_ref_uri=f"gitlab.example/{project}//.gitlab-ci.yml@refs/heads/main",
        job_id="777",
        pipeline_id="555",
        pipeline_source="push",
        user_login="alice",
        runner_environment="gitlab-hosted",
        **extra,
    )


@dataclass
class _State:
    keys: dict[str, Any]
    jwks_path: str = "/.well-known/jwks"
    """Where the discovery document says the keys are (GitHub: /.well-known/jwks; GitLab:
    /oauth/discovery/keys)."""
    requests: Counter[str] = field(default_factory=Counter)
    status: int = 200
    discovery_issuer: str | None = None
    """The ``issuer`` the discovery document names (default: the server's own URL)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        state, base = self.server.state, self.server.base_url
        with self.server.lock:
            state.requests[self.path] += 1
        if state.status != 200:
            self._send(state.status, {"error": "configured to fail"})
        elif self.path == "/.well-known/openid-configuration":
            self._send(
                200,
                {
                    "issuer": state.discovery_issuer or base,
                    "jwks_uri": f"{base}{state.jwks_path}",
                    "subject_types_supported": ["public", "pairwise"],
                    "response_types_supported": ["id_token"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref"],
                    "scopes_supported": ["openid"],
                },
            )
        elif self.path in (state.jwks_path, "/jwks.json"):
            self._send(200, state.keys)
        else:
            self._send(404, {"error": "not found"})

    def _send(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.state = state
        self.lock = threading.Lock()
        self.base_url = f"https://127.0.0.1:{self.server_address[1]}"


class IssuerServer:
    """``with IssuerServer(pki, key) as idp:`` an OpenID provider on https://127.0.0.1:<port>:
    ``idp.issuer`` is its URL (and the ``iss`` of its tokens), ``idp.jwks_url`` its key set."""

    def __init__(
        self, pki: DevPki, *keys: SigningKey, jwks_path: str = "/.well-known/jwks"
    ) -> None:
        self.ca_file: Path = pki.ca_cert
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        self._state = _State(jwks(*keys), jwks_path)
        self._server = _Server(self._state, context)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return self._server.base_url

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks.json"

    def publish(self, *keys: SigningKey) -> None:
        """Serve these keys from now on (a rotation)."""
        self._state.keys = jwks(*keys)

    def fail_with(self, status: int) -> None:
        self._state.status = status

    def name_issuer(self, issuer: str) -> None:
        """Make the discovery document name ``issuer`` (a provider that is not the one)."""
        self._state.discovery_issuer = issuer

    def requests(self, path: str) -> int:
        with self._server.lock:
            return self._state.requests[path]

    def __enter__(self) -> IssuerServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
