"""Shared fixtures: real PostgreSQL, real OPA on the bundled policies, real Go modules
served by two upstreams on 127.0.0.1, a development PKI, and `modgate serve` itself."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.audit import migrate
from gateway.certs import DevPki, init_dev_pki
from tests.support.gateway import GatewayProcess
from tests.support.gomodules import ModuleVersion, build_module, write_proxy_tree
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

REPO = Path(__file__).resolve().parents[1]
HELLO = 'package hello\n\n// Hello greets.\nfunc Hello() string { return "hello, %s" }\n'


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return init_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tls_context(pki: DevPki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_cert))


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    with ThrowawayPostgres() as pg:
        migrate.upgrade(pg.dsn())
        yield pg


@pytest.fixture(scope="session")
def opa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    log = tmp_path_factory.mktemp("opa") / "opa.log"
    with OpaServer(REPO / "policies", log_path=log) as opa:
        yield opa


@dataclass(frozen=True)
class Modules:
    """The module versions the tests build, keyed by (path, version)."""

    versions: dict[tuple[str, str], ModuleVersion]
    public_root: Path
    private_root: Path

    def __getitem__(self, key: tuple[str, str]) -> ModuleVersion:
        return self.versions[key]


PUBLIC = [
    ("example.com/hello", "v1.0.0"),
    ("example.com/hello", "v1.1.0"),
    ("example.com/Upper/Case", "v1.0.0"),
    ("example.com/insecure", "v1.0.0"),
    ("example.com/insecure", "v1.0.1"),
]
PRIVATE = [("corp.example.com/secret", "v1.0.0")]


@pytest.fixture(scope="session")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Modules:
    work = tmp_path_factory.mktemp("gomodules")
    built: dict[tuple[str, str], ModuleVersion] = {}
    for path, version in PUBLIC + PRIVATE:
        source = HELLO % f"{path}@{version}"
        built[path, version] = build_module(work / "src", path, version, {"lib.go": source})
    public_root, private_root = work / "public", work / "private"
    write_proxy_tree(
        public_root,
        [built[k] for k in PUBLIC],
        revision_aliases={
            ("example.com/hello", "master"): "v1.1.0",
            ("example.com/insecure", "main"): "v1.0.1",
        },
    )
    write_proxy_tree(private_root, [built[k] for k in PRIVATE])
    sumdb = public_root / "sumdb" / "sum.golang.org"
    (sumdb / "lookup" / "example.com").mkdir(parents=True)
    (sumdb / "supported").write_bytes(b"")
    (sumdb / "lookup" / "example.com" / "hello@v1.0.0").write_bytes(
        b"7\nexample.com/hello v1.0.0 h1:x=\n\ngo.sum database tree\n8\nabc=\n\n\xe2\x80\x94 sig\n"
    )
    (sumdb / "tile" / "8" / "0").mkdir(parents=True)
    (sumdb / "tile" / "8" / "0" / "000").write_bytes(bytes(range(256)) * 4)
    return Modules(built, public_root, private_root)


@pytest.fixture(scope="session")
def public_upstream(modules: Modules) -> Iterator[UpstreamServer]:
    with UpstreamServer(modules.public_root) as server:
        yield server


@pytest.fixture(scope="session")
def private_upstream(modules: Modules) -> Iterator[UpstreamServer]:
    with UpstreamServer(modules.private_root) as server:
        yield server


def modgate_cli(*args: str, database_url: str) -> str:
    """Run the real `modgate` CLI and return its stdout."""
    env = {**os.environ, "MODGATE_AUDIT_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


@dataclass(frozen=True)
class Tokens:
    alice: str  # group developers: may fetch private paths
    bob: str  # group contractors: may not
    operator: str  # group modgate-operators: sees /readyz details and /metrics


@pytest.fixture(scope="session")
def tokens(postgres: ThrowawayPostgres) -> Tokens:
    def create(subject: str, group: str) -> str:
        out = modgate_cli(
            "token", "create", "--subject", subject, "--group", group, database_url=postgres.dsn()
        )
        return out.strip()

    return Tokens(
        alice=create("alice", "developers"),
        bob=create("bob", "contractors"),
        operator=create("ops", "modgate-operators"),
    )


def gateway_env(
    pki: DevPki, postgres: ThrowawayPostgres, opa_url: str, public: str, private: str
) -> dict[str, str]:
    return {
        "MODGATE_AUDIT_DATABASE_URL": postgres.dsn(),
        "MODGATE_POLICY_OPA_URL": opa_url,
        "MODGATE_UPSTREAM_PUBLIC": public,
        "MODGATE_UPSTREAM_PRIVATE": private,
        "MODGATE_TLS_CERT_FILE": str(pki.server_cert),
        "MODGATE_TLS_KEY_FILE": str(pki.server_key),
        "MODGATE_IDENTITY_TOKEN_CACHE_S": "0",
        # Tests share this gateway and its one client address: how many bad credentials
        # others sent in the last minute must not decide a test (tests/hardening/
        # test_identity.py starts gateways of its own to test the limit).
        "MODGATE_IDENTITY_FAILED_AUTH_PER_MINUTE": "0",
        "MODGATE_UPSTREAM_READ_TIMEOUT_S": "5",
    }


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
    tokens: Tokens,
) -> Iterator[GatewayProcess]:
    env = gateway_env(pki, postgres, opa_server.url, public_upstream.url, private_upstream.url)
    log = tmp_path_factory.mktemp("gateway") / "modgate.log"
    with GatewayProcess(env, pki.ca_cert, log) as process:
        yield process


@pytest.fixture
def client(gateway: GatewayProcess, tls_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, verify=tls_context, timeout=30) as http:
        yield http
