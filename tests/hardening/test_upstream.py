"""Upstreams that redirect, stall or confuse the policy, and checksum databases modgate does
not serve: attacks on the pull path, run against the real `modgate serve` over TLS with real
PostgreSQL, OPA, upstreams on 127.0.0.1 and, for the checksum database, the go command.

One gateway serves the module: public upstreams ``pub1, pub2`` and private ``priv1, priv2``,
each a real HTTP server over a copy of the test modules, made to misbehave per test;
``elsewhere`` is where redirects point and serves a tampered copy of the private module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.certs import DevPki
from tests.conftest import Modules, Tokens, gateway_env
from tests.support.audit import audit_rows, completed_row
from tests.support.gateway import GatewayProcess
from tests.support.gomodules import go_env, go_mod_download
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

TOTAL_TIMEOUT_S = 1.5
ZIP_TIMEOUT_S = 2.0
TRICKLE_S = 0.5  # one byte each half second: never trips the 5 s read timeout
SECRET_MOD = "/corp.example.com/secret/@v/v1.0.0.mod"
SECRET_ZIP = "/corp.example.com/secret/@v/v1.0.0.zip"
HELLO_MOD = "/example.com/hello/@v/v1.0.0.mod"
HELLO_ZIP = "/example.com/hello/@v/v1.0.0.zip"
NOT_FOLLOWED = "HTTP 302 (redirects are not followed)"


@dataclass(frozen=True)
class Upstreams:
    pub1: UpstreamServer
    pub2: UpstreamServer
    priv1: UpstreamServer
    priv2: UpstreamServer
    elsewhere: UpstreamServer
    public_root: Path

    def all(self) -> tuple[UpstreamServer, ...]:
        return (self.pub1, self.pub2, self.priv1, self.priv2, self.elsewhere)


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory, modules: Modules) -> Iterator[Upstreams]:
    work = tmp_path_factory.mktemp("upstreams")
    public, private, tampered = work / "public", work / "private", work / "elsewhere"
    shutil.copytree(modules.public_root, public)
    shutil.copytree(modules.private_root, private)
    shutil.copytree(modules.private_root, tampered)
    (tampered / SECRET_MOD.lstrip("/")).write_bytes(b"module corp.example.com/secret // tampered\n")
    servers = [UpstreamServer(root).start() for root in (public, public, private, private)]
    servers.append(UpstreamServer(tampered).start())
    try:
        yield Upstreams(*servers, public_root=public)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstreams: Upstreams,
) -> Iterator[GatewayProcess]:
    env = gateway_env(
        pki,
        postgres,
        opa_server.url,
        f"{upstreams.pub1.url},{upstreams.pub2.url}",
        f"{upstreams.priv1.url},{upstreams.priv2.url}",
    )
    env |= {
        "MODGATE_UPSTREAM_CONNECT_TIMEOUT_S": "1",
        "MODGATE_UPSTREAM_TOTAL_TIMEOUT_S": str(TOTAL_TIMEOUT_S),
        "MODGATE_UPSTREAM_ZIP_TIMEOUT_S": str(ZIP_TIMEOUT_S),
    }
    log = tmp_path_factory.mktemp("gateway-upstream") / "modgate.log"
    with GatewayProcess(env, pki.ca_cert, log) as process:
        yield process


@pytest.fixture(autouse=True)
def well_behaved(upstreams: Upstreams) -> Iterator[None]:
    """Each test starts with every upstream behaving and an empty access log."""
    for server in upstreams.all():
        server.behave()
        server.clear()
    yield
    for server in upstreams.all():
        server.behave()


@pytest.fixture
def public_serves(upstreams: Upstreams) -> Iterator[Callable[[str, bytes], None]]:
    """Make the public upstreams answer ``path`` with ``body``; restored after the test."""
    saved: dict[Path, bytes | None] = {}

    def serve(path: str, body: bytes) -> None:
        target = upstreams.public_root / path.lstrip("/")
        saved.setdefault(target, target.read_bytes() if target.exists() else None)
        target.write_bytes(body)

    yield serve
    for target, original in saved.items():
        if original is None:
            target.unlink()
        else:
            target.write_bytes(original)


@pytest.fixture
def client(gateway: GatewayProcess, tls_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, verify=tls_context, timeout=15) as http:
        yield http


@pytest.fixture
def alice(tokens: Tokens) -> dict[str, str]:
    """alice is in group developers: she may fetch private modules."""
    return {"Authorization": f"Bearer {tokens.alice}"}


def record_of(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, Any]:
    return completed_row(postgres.libpq_dsn(), response.headers["X-Request-Id"])


# -- 5. redirects are never followed ---------------------------------------------------------


def test_redirect_from_the_private_upstream_is_not_followed_and_the_next_is_tried(
    client: httpx.Client,
    alice: dict[str, str],
    upstreams: Upstreams,
    modules: Modules,
    postgres: ThrowawayPostgres,
) -> None:
    # given the first private upstream redirects every request to another host
    upstreams.priv1.redirect_to = upstreams.elsewhere.url
    # when alice fetches a private module's go.mod
    response = client.get(SECRET_MOD, headers=alice)
    # then the second private upstream answers, and the redirect target never hears of it
    assert response.status_code == 200
    assert response.content == modules["corp.example.com/secret", "v1.0.0"].mod
    assert upstreams.priv1.paths() == [SECRET_MOD]
    assert upstreams.priv2.paths() == [SECRET_MOD]
    assert upstreams.elsewhere.paths() == []
    row = record_of(postgres, response)
    assert (row["decision"], row["status"], row["upstream"]) == ("allow", 200, upstreams.priv2.url)


@pytest.mark.parametrize("path", [SECRET_MOD, SECRET_ZIP], ids=["mod", "zip"])
def test_redirects_from_every_private_upstream_are_a_502_and_never_followed(
    client: httpx.Client,
    alice: dict[str, str],
    upstreams: Upstreams,
    postgres: ThrowawayPostgres,
    path: str,
) -> None:
    # given both private upstreams redirect to another host
    upstreams.priv1.redirect_to = upstreams.priv2.redirect_to = upstreams.elsewhere.url
    # when alice fetches a private module file
    response = client.get(path, headers=alice)
    # then it is refused with each upstream's redirect named, and nothing went elsewhere
    assert response.status_code == 502
    assert response.text == (
        f"no upstream answered ({upstreams.priv1.url}: {NOT_FOLLOWED}; "
        f"{upstreams.priv2.url}: {NOT_FOLLOWED})\n"
    )
    assert upstreams.elsewhere.paths() == []
    row = record_of(postgres, response)
    assert (row["status"], row["error_code"], row["upstream"]) == (502, "upstream_failed", None)
    assert upstreams.elsewhere.url not in json.dumps(row, default=str)


def test_redirect_answering_a_revision_query_is_recorded_with_its_reason(
    client: httpx.Client, alice: dict[str, str], upstreams: Upstreams, postgres: ThrowawayPostgres
) -> None:
    # given both public upstreams redirect, when a branch is resolved through them
    upstreams.pub1.redirect_to = upstreams.pub2.redirect_to = upstreams.elsewhere.url
    response = client.get("/example.com/hello/@v/master.info", headers=alice)
    # then the record (written before the upstreams were asked: the query was allowed to be
    # resolved) ends in the refusal, with its reasons
    assert response.status_code == 502
    row = record_of(postgres, response)
    assert (row["decision"], row["status"], row["error_code"], row["upstream"]) == (
        "allow",
        502,
        "upstream_failed",
        None,
    )
    assert [NOT_FOLLOWED in reason for reason in row["reasons"]] == [True]
    assert upstreams.elsewhere.paths() == []


# -- 15. a deadline for each whole upstream answer -------------------------------------------


def test_trickling_mod_is_cut_at_the_total_deadline_and_the_next_upstream_answers(
    client: httpx.Client,
    alice: dict[str, str],
    upstreams: Upstreams,
    modules: Modules,
    postgres: ThrowawayPostgres,
) -> None:
    # given the first public upstream sends its .mod one byte each half second (~17 s)
    upstreams.pub1.trickle_interval_s = TRICKLE_S
    # when alice fetches it
    started = time.monotonic()
    response = client.get(HELLO_MOD, headers=alice)
    elapsed = time.monotonic() - started
    # then the second upstream's answer is served once the first one's deadline passed
    assert response.status_code == 200
    assert response.content == modules["example.com/hello", "v1.0.0"].mod
    assert upstreams.pub1.paths() == upstreams.pub2.paths() == [HELLO_MOD]
    assert record_of(postgres, response)["upstream"] == upstreams.pub2.url
    assert elapsed < TOTAL_TIMEOUT_S + 5  # bounded by the deadline, not by the trickle


def test_trickling_mod_from_every_upstream_is_a_504_within_the_deadlines(
    client: httpx.Client, alice: dict[str, str], upstreams: Upstreams, postgres: ThrowawayPostgres
) -> None:
    # given both public upstreams trickle
    upstreams.pub1.trickle_interval_s = upstreams.pub2.trickle_interval_s = TRICKLE_S
    # when alice fetches a .mod
    started = time.monotonic()
    response = client.get(HELLO_MOD, headers=alice)
    elapsed = time.monotonic() - started
    # then it is a 504 after about two deadlines, recorded as an upstream timeout
    assert response.status_code == 504
    assert response.text.startswith("upstream timed out (")
    assert response.text.count("timeout reading body") == 2
    assert elapsed < 2 * TOTAL_TIMEOUT_S + 5
    row = record_of(postgres, response)
    assert (row["status"], row["error_code"]) == (504, "upstream_timeout")


def test_trickling_zip_is_cut_at_the_zip_deadline_and_recorded_as_a_timeout(
    client: httpx.Client,
    alice: dict[str, str],
    upstreams: Upstreams,
    modules: Modules,
    postgres: ThrowawayPostgres,
) -> None:
    # given the public upstream trickles the zip (minutes for the whole body)
    upstreams.pub1.trickle_interval_s = TRICKLE_S
    size = len(modules["example.com/hello", "v1.0.0"].zip)
    # when alice downloads it (the test gives up by itself after 15 s)
    received, started, request_id = 0, time.monotonic(), ""
    with (
        pytest.raises(httpx.RemoteProtocolError),  # the stream breaks off mid-body
        client.stream("GET", HELLO_ZIP, headers=alice) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["X-Request-Id"]
        for chunk in response.iter_raw():
            received += len(chunk)
            if time.monotonic() - started > 15:
                break
    elapsed = time.monotonic() - started
    # then the download is broken off at the zip deadline, with a few bytes sent
    assert 0 < received < size
    assert elapsed < ZIP_TIMEOUT_S + 5
    row = completed_row(postgres.libpq_dsn(), request_id)
    assert (row["decision"], row["error_code"]) == ("allow", "upstream_timeout")
    assert row["bytes"] == received


# -- 18. .info read as the go command reads it -----------------------------------------------

AMBIGUOUS = b'{"Version":"v1.0.0","version":"v1.0.1","Time":"2024-01-01T00:00:00Z"}'


@pytest.mark.parametrize(
    "path",
    ["/example.com/insecure/@latest", "/example.com/insecure/@v/main.info"],
    ids=["latest", "revision-query"],
)
def test_ambiguous_info_naming_a_blacklisted_version_is_never_served_as_allowed(
    client: httpx.Client,
    alice: dict[str, str],
    public_serves: Callable[[str, bytes], None],
    postgres: ThrowawayPostgres,
    path: str,
) -> None:
    # given an upstream resolves the query to v1.0.0 for Python and v1.0.1 (blacklisted) for Go
    public_serves(path, AMBIGUOUS)
    # when alice asks for it
    response = client.get(path, headers=alice)
    # then it is refused as ambiguous, and recorded so
    assert response.status_code == 502
    assert "sent an ambiguous .info: keys Version, version" in response.text
    row = record_of(postgres, response)  # the request's only record: never v1.0.0 allowed
    assert (row["decision"], row["status"], row["error_code"]) == (
        "allow",  # to be resolved, recorded before the upstream was asked
        502,
        "upstream_failed",
    )
    assert row["version"] in (None, "main")
    assert ["ambiguous .info" in reason for reason in row["reasons"]] == [True]


@pytest.mark.parametrize(
    "body",
    [b'{"version":"v1.0.1"}', '{"Ver\u017fion":"v1.0.1"}'.encode()],
    ids=["lower-case", "long-s"],
)
def test_info_key_in_another_case_is_judged_as_the_go_command_reads_it(
    client: httpx.Client,
    alice: dict[str, str],
    public_serves: Callable[[str, bytes], None],
    postgres: ThrowawayPostgres,
    body: bytes,
) -> None:
    # given an upstream resolves main to v1.0.1 under a key only Go's decoder matches
    public_serves("/example.com/insecure/@v/main.info", body)
    # when alice asks for it
    response = client.get("/example.com/insecure/@v/main.info", headers=alice)
    # then the policy judged v1.0.1, which is blacklisted
    assert response.status_code == 403
    assert "blocked by policy: example.com/insecure@v1.0.1" in response.text
    row = record_of(postgres, response)
    assert (row["decision"], row["version"], row["requested_version"]) == ("deny", "v1.0.1", "main")


# -- 19. a checksum database modgate does not serve ------------------------------------------


def test_unknown_checksum_database_is_a_recorded_403_with_what_to_do(
    client: httpx.Client, alice: dict[str, str], upstreams: Upstreams, postgres: ThrowawayPostgres
) -> None:
    response = client.get("/sumdb/sum.evil.example/supported", headers=alice)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text.startswith(
        'checksum database "sum.evil.example" is not served by modgate; set GOSUMDB to one'
    )
    row = record_of(postgres, response)
    assert (row["decision"], row["status"], row["error_code"]) == (
        "deny",
        403,
        "sumdb_not_served",
    )
    assert [s.paths() for s in upstreams.all()] == [[]] * 5


def verifier_key(name: str) -> str:
    """A GOSUMDB verifier key for ``name`` (x/mod/sumdb/note: name+hash+base64(alg||key))."""
    public = Ed25519PrivateKey.generate().public_key()
    key = b"\x01" + public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex()
    return f"{name}+{key_hash}+{base64.b64encode(key).decode()}"


@pytest.fixture
def checksum_database(tmp_path: Path, pki: DevPki) -> Iterator[UpstreamServer]:
    """An https server on 127.0.0.1 standing for a checksum database: the go command asks
    ``https://<name>`` directly when no proxy serves it, so its name is its address."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    (tmp_path / "sumdb-root").mkdir()
    with UpstreamServer(tmp_path / "sumdb-root", ssl_context=context) as server:
        yield server


def refused_download(
    gateway: GatewayProcess, token: str, home: Path, gosumdb: str, module: str
) -> dict[str, Any]:
    """`go mod download -json module` as a developer behind modgate, with ``gosumdb``."""
    (home / "netrc").write_text(f"machine 127.0.0.1:{gateway.port} login alice password {token}\n")
    env = go_env(
        GOPROXY=gateway.url,
        GOSUMDB=gosumdb,
        GONOSUMDB="",
        GOFLAGS="-mod=mod",
        NETRC=str(home / "netrc"),
        SSL_CERT_FILE=str(gateway.ca_file),
        GOMODCACHE=str(home / "modcache"),
        GOPATH=str(home / "gopath"),
        GOCACHE=str(home / "gocache"),
        HOME=str(home),
    )
    done = go_mod_download(module, home, env)
    assert done.returncode != 0, done.stdout
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.gocmd
def test_go_command_stops_at_modgate_for_a_checksum_database_it_does_not_serve(
    gateway: GatewayProcess,
    tokens: Tokens,
    tmp_path: Path,
    checksum_database: UpstreamServer,
    upstreams: Upstreams,
    postgres: ThrowawayPostgres,
) -> None:
    # given a developer whose GOSUMDB names a database modgate does not serve
    name = f"127.0.0.1:{checksum_database.port}"
    # when the go command downloads a module and must verify its checksum
    result = refused_download(
        gateway, tokens.alice, tmp_path, verifier_key(name), "example.com/hello@v1.0.0"
    )
    # then it fails on modgate's 403, showing modgate's reason, and asks nothing else
    error = result["Error"]
    assert f"reading {gateway.url}/sumdb/{name}/supported: 403 Forbidden" in error
    assert f'server response: checksum database "{name}" is not served by modgate' in error
    assert checksum_database.paths() == []
    assert not [p for s in upstreams.all() for p in s.paths() if p.startswith("/sumdb/")]
    rows = audit_rows(postgres.libpq_dsn(), "path = $1", f"/sumdb/{name}/supported")
    assert {(r["status"], r["error_code"]) for r in rows} == {(403, "sumdb_not_served")}


@pytest.mark.gocmd
def test_with_unknown_status_404_the_go_command_asks_that_database_directly(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    tokens: Tokens,
    upstreams: Upstreams,
    checksum_database: UpstreamServer,
) -> None:
    # given modgate configured to answer 404 for checksum databases it does not serve
    env = gateway_env(pki, postgres, opa_server.url, upstreams.pub1.url, upstreams.priv1.url)
    env["MODGATE_SUMDB_UNKNOWN_STATUS"] = "404"
    name = f"127.0.0.1:{checksum_database.port}"
    with GatewayProcess(env, pki.ca_cert, tmp_path / "modgate.log") as gateway:
        # when the go command must verify a checksum with that database
        result = refused_download(
            gateway, tokens.alice, tmp_path, verifier_key(name), "example.com/hello@v1.0.0"
        )
    # then modgate answered 404 (recorded), and the go command went around it, directly
    assert "Error" in result
    rows = audit_rows(postgres.libpq_dsn(), "path = $1", f"/sumdb/{name}/supported")
    assert {(r["status"], r["error_code"]) for r in rows} == {(404, "not_found")}
    assert checksum_database.paths(), "the go command should have asked the database itself"
