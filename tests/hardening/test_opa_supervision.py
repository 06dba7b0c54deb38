"""Only modgate can talk to the OPA it supervises; a remote OPA gets modgate's token.

The attack (hardening issue, point 3): the supervised OPA listened on 127.0.0.1, so any
local process could `PUT /v1/data/modgate/blacklist` and have blacklisted versions served,
and after a crash OPA came back on the same port, which a local process could bind first
and so become the policy engine. These tests run the real `modgate serve` over TLS with
its supervised OPA (no policy.opa_url), real PostgreSQL and upstreams, and attack it from
other processes: one of another user (`nobody`, when the tests run as root), and the test
process itself, as modgate's own user, taking the old address of a killed OPA.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.certs import DevPki
from gateway.errors import ConfigError, PolicyError
from gateway.goproxy.requests import ModuleRequest
from gateway.identity.base import Identity
from gateway.policy.input import PolicyInput
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine
from gateway.policy.peer import check_socket_peer
from gateway.policy.supervisor import SupervisedOpa
from tests.conftest import REPO, Tokens, gateway_env
from tests.support.audit import audit_rows
from tests.support.gateway import GatewayProcess
from tests.support.opa import OpaServer, find_opa
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

ALLOWED = "/example.com/hello/@v/v1.0.0.info"
BLACKLISTED = "/example.com/insecure/@v/v1.0.1.info"  # example.com/insecure@v1.0.1, SEC-42
NOBODY = 65534
RESTART_WAIT_S = 20.0
# Any well-formed input: the impostor below allows whatever it is asked.
ANY_INPUT = PolicyInput(
    "sample",
    ModuleRequest("example.com/hello", "list"),
    Identity(subject="alice", groups=("developers",), method="token"),
    "127.0.0.1",
    datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
)


# --- looking at the gateway's OPA from outside, through /proc ---------------------------


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode() for part in raw.split(b"\0") if part]


def opa_child(gateway: GatewayProcess) -> int | None:
    """The pid of the `opa run` process the gateway started, if one runs now."""
    for children in Path(f"/proc/{gateway.pid}/task").glob("*/children"):
        for pid in map(int, children.read_text().split()):
            argv = _argv(pid)
            if argv and argv[0].endswith("opa") and "run" in argv:
                return pid
    return None


def opa_address(pid: int) -> str:
    """The --addr the OPA process was started with: `unix:///...` or `host:port`."""
    argv = _argv(pid)
    return argv[argv.index("--addr") + 1]


def wait_for_new_opa(gateway: GatewayProcess, old_pid: int | None) -> int:
    deadline = time.monotonic() + RESTART_WAIT_S
    while time.monotonic() < deadline:
        pid = opa_child(gateway)
        if pid is not None and pid != old_pid and "--addr" in _argv(pid):
            return pid
        time.sleep(0.05)
    raise AssertionError(f"no OPA child after {RESTART_WAIT_S} s:\n{gateway.log_tail()}")


def tcp_sockets_of(pid: int) -> set[str]:
    """Inodes of the TCP sockets (any state) that ``pid`` holds open."""
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            held.add(target[len("socket:[") : -1])
    tcp = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            tcp.add(line.split()[9])
    return held & tcp


def blacklist_data_path() -> str:
    """Where the policy data keeps the blacklist entry of example.com/insecure, as an OPA
    data path (``modgate/blacklist`` today): found in the files, so the test follows the
    data wherever it moves under policies/."""

    def search(node: Any, keys: list[str]) -> list[str] | None:
        if isinstance(node, list) and any(
            isinstance(entry, dict) and entry.get("module") == "example.com/insecure"
            for entry in node
        ):
            return keys
        if isinstance(node, dict):
            for key, value in node.items():
                found = search(value, [*keys, key])
                if found is not None:
                    return found
        return None

    policies = REPO / "policies"
    for data_file in sorted(policies.rglob("data.json")):
        prefix = list(data_file.parent.relative_to(policies).parts)
        found = search(json.loads(data_file.read_text()), prefix)
        if found is not None:
            return "/".join(found)
    raise AssertionError("no blacklist entry for example.com/insecure under policies/")


# --- another user's process --------------------------------------------------------------

# Runs as `nobody` with only the standard library: what a local attacker has at hand.
_ATTACKER = r"""
import errno, json, socket, sys

job = json.loads(sys.argv[1])

def connect(address):
    if address.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(address[len("unix://"):])
        return sock
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)

def put(address, path):
    body = b"[]"
    head = f"PUT /v1/data/{path} HTTP/1.1\r\nHost: opa\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with connect(address) as sock:
        sock.sendall(head.encode() + body)
        return sock.recv(200).split(b" ")[1].decode()

def bind(address):
    if address.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address[len("unix://"):])
    else:
        host, port = address.rsplit(":", 1)
        sock = socket.socket()
        sock.bind((host, int(port)))
    sock.close()
    return "bound"

try:
    result = put(job["address"], job["path"]) if job["do"] == "put" else bind(job["address"])
except OSError as exc:
    result = errno.errorcode.get(exc.errno, str(exc))
print(result)
"""


def as_nobody(job: dict[str, str]) -> str:
    """Run one attack step as another OS user; its outcome: an HTTP status, "bound" or the
    errno name."""
    # The system's interpreter: modgate's may live where only its user can read.
    python = shutil.which("python3", path="/usr/bin:/bin")
    assert python is not None, "no /usr/bin/python3 to run the other user's process with"
    done = subprocess.run(
        [python, "-I", "-c", _ATTACKER, json.dumps(job)],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


# --- a process that poses as OPA ---------------------------------------------------------


class _Impostor(BaseHTTPRequestHandler):
    """Answers every question the way the attacker wants: healthy, and allowed."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        self._reply(b"{}")

    def do_POST(self) -> None:
        self.seen.append(f"POST {self.path}")
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._reply(b'{"result": {"allow": true, "reasons": [], "route": "public"}}')

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


class _UnixHTTPServer(HTTPServer):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        self.socket.bind(self.server_address)

    def get_request(self) -> tuple[socket.socket, Any]:
        request, _ = self.socket.accept()
        return request, ("impostor", 0)


def take_address(address: str, seen: list[str], deadline_s: float = 5.0) -> HTTPServer:
    """Bind ``address`` as soon as it can be bound (the killed OPA's socket or port) and
    serve permissive answers there."""
    handler = type("Impostor", (_Impostor,), {"seen": seen})
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if address.startswith("unix://"):
                path = address[len("unix://") :]
                if os.path.exists(path):
                    os.unlink(path)  # what a process of modgate's own user can do
                server: HTTPServer = _UnixHTTPServer(path, handler)
            else:
                host, port = address.rsplit(":", 1)
                server = HTTPServer((host, int(port)), handler)
            break
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.ENOENT) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def supervised_gateway(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
    tokens: Tokens,
) -> Iterator[GatewayProcess]:
    """`modgate serve` with no policy.opa_url: it starts and supervises its own OPA."""
    env = gateway_env(pki, postgres, "", public_upstream.url, private_upstream.url)
    del env["MODGATE_POLICY_OPA_URL"]
    env["MODGATE_POLICY_OPA_BINARY"] = str(find_opa())
    with GatewayProcess(env, pki.ca_cert, tmp_path / "modgate.log") as process:
        yield process


@pytest.fixture
def alice(tokens: Tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.alice}"}


def client_for(gateway: GatewayProcess, pki: DevPki) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    return httpx.Client(base_url=gateway.url, verify=context, timeout=30)


def wait_ready(http: httpx.Client) -> None:
    deadline = time.monotonic() + RESTART_WAIT_S
    while http.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "/readyz did not become ready again"
        time.sleep(0.1)


# --- the supervised OPA ------------------------------------------------------------------


def test_supervised_opa_listens_only_on_a_unix_socket_in_a_private_directory(
    supervised_gateway: GatewayProcess,
) -> None:
    # given modgate serving with its own OPA
    pid = wait_for_new_opa(supervised_gateway, None)
    # when we look at that OPA from outside
    address = opa_address(pid)
    # then it was given only a Unix socket, holds no TCP socket at all, and the socket
    # sits in a directory only this user can enter
    assert address.startswith("unix:///"), address
    assert _argv(pid).count("--addr") == 1
    assert tcp_sockets_of(pid) == set()
    socket_path = Path(address[len("unix://") :])
    directory = socket_path.parent.stat()
    assert stat.S_IMODE(directory.st_mode) == 0o700
    assert directory.st_uid == os.geteuid()
    assert stat.S_ISSOCK(socket_path.stat().st_mode)
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600


def test_another_user_can_neither_write_policy_data_nor_take_the_address_of_a_restart(
    supervised_gateway: GatewayProcess, pki: DevPki, alice: dict[str, str]
) -> None:
    # Acting as another user takes root. CI (and `make test` here) runs as root, so in CI
    # a non-root run is a failure, not a quietly missing check; locally it says why.
    if os.geteuid() != 0:
        message = "acting as another user ('nobody') needs root: run the tests as root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.xfail(message)
    # given modgate serving with its own OPA, and a process of another user
    pid = wait_for_new_opa(supervised_gateway, None)
    address = opa_address(pid)
    # when that process empties the blacklist through OPA's REST API
    put = as_nobody({"do": "put", "address": address, "path": blacklist_data_path()})
    # then it cannot even connect
    assert put == "EACCES", f"PUT of the blacklist answered {put}"
    # and when OPA dies and that process tries to bind its address before the restart
    os.kill(pid, signal.SIGKILL)
    bind = as_nobody({"do": "bind", "address": address})
    assert bind == "EACCES", f"binding the dead OPA's address: {bind}"
    # then the restarted OPA is modgate's, and the blacklist still holds
    wait_for_new_opa(supervised_gateway, pid)
    with client_for(supervised_gateway, pki) as http:
        wait_ready(http)
        denied = http.get(BLACKLISTED, headers=alice)
        assert denied.status_code == 403, denied.text
        assert "SEC-42" in denied.text


def test_killed_opa_restarts_on_a_new_socket_and_the_old_address_is_never_asked_again(
    supervised_gateway: GatewayProcess,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    alice: dict[str, str],
) -> None:
    # given modgate serving with its own OPA
    pid = wait_for_new_opa(supervised_gateway, None)
    old_address = opa_address(pid)
    seen: list[str] = []
    with client_for(supervised_gateway, pki) as http:
        assert http.get(BLACKLISTED, headers=alice).status_code == 403
        # when OPA is killed and a local process (modgate's own user, the strongest local
        # attacker short of a debugger) binds its old address first, answering "allow"
        os.kill(pid, signal.SIGKILL)
        impostor = take_address(old_address, seen)
        try:
            # then no request is ever allowed by the impostor: refused (503) while OPA is
            # down, denied (403) once modgate's new OPA answers
            answers: list[httpx.Response] = []
            new_pid = None
            deadline = time.monotonic() + RESTART_WAIT_S
            while new_pid is None or answers[-1].status_code != 403:
                answer = http.get(BLACKLISTED, headers=alice)
                answers.append(answer)
                assert answer.status_code in (403, 503), (
                    f"blacklisted version answered {answer.status_code} during the restart; "
                    f"the impostor was asked: {seen}"
                )
                assert time.monotonic() < deadline, f"no restart: {supervised_gateway.log_tail()}"
                candidate = opa_child(supervised_gateway)
                new_pid = candidate if candidate not in (None, pid) else None
            wait_ready(http)
            assert http.get(BLACKLISTED, headers=alice).status_code == 403
            assert http.get(ALLOWED, headers=alice).status_code == 200
        finally:
            impostor.shutdown()
            impostor.server_close()
    assert seen == [], f"the gateway asked the impostor: {seen}"
    new_address = opa_address(new_pid)
    assert new_address != old_address
    assert new_address.startswith("unix://")
    for answer in answers:  # each refusal while OPA was down is on the record as such
        if answer.status_code == 503:
            (row,) = audit_rows(
                postgres.libpq_dsn(), "request_id = $1", answer.headers["X-Request-Id"]
            )
            assert row["error_code"] == "policy_unreachable"


def test_peer_check_accepts_the_process_listening_on_the_socket(tmp_path: Path) -> None:
    # given a child process listening on a Unix socket
    with _listener(tmp_path / "s.sock") as child:
        # when the socket's peer is checked against that child, then it passes
        check_socket_peer(str(tmp_path / "s.sock"), child.pid)


def test_peer_check_refuses_a_socket_served_by_another_process(tmp_path: Path) -> None:
    # given a socket served by a process other than the one expected
    # when it is checked against the pid modgate started
    with _listener(tmp_path / "s.sock") as child, pytest.raises(ConfigError) as refused:
        check_socket_peer(str(tmp_path / "s.sock"), os.getpid())
    # then it is refused, naming who does listen there
    assert f"served by pid {child.pid}" in refused.value.reason


@pytest.mark.parametrize("expected", ["the-listener", "another-pid"])
async def test_engine_connects_only_to_the_process_it_was_told_listens(
    tmp_path: Path, expected: str
) -> None:
    # given a socket served (permissively) by this test process
    seen: list[str] = []
    impostor = take_address(f"unix://{tmp_path / 'opa.sock'}", seen)
    peer_pid = os.getpid() if expected == "the-listener" else os.getppid()
    endpoint = OpaEndpoint.for_socket(str(tmp_path / "opa.sock"), peer_pid)
    try:
        async with OpaPolicyEngine(endpoint, "modgate/decision", 2, 0) as engine:
            # when the engine asks for a decision there
            if expected == "the-listener":
                # then it gets one when the listener is the process it expects
                assert (await engine.decide(ANY_INPUT)).allowed
                assert seen == ["POST /v1/data/modgate/decision"]
            else:
                # and otherwise the connection fails before a byte is sent
                with pytest.raises(PolicyError, match="unreachable"):
                    await engine.decide(ANY_INPUT)
                assert not await engine.healthy()
                assert seen == []
    finally:
        impostor.shutdown()
        impostor.server_close()


async def test_supervisor_refuses_an_opa_it_did_not_start_itself(tmp_path: Path) -> None:
    # given an "OPA binary" that is a wrapper forking the real OPA as its own child, so
    # the process answering on the socket is not the one modgate started
    pid_file = tmp_path / "opa.pid"
    wrapper = tmp_path / "opa"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'"{find_opa()}" "$@" &\n'
        f'child=$!; echo $child > "{pid_file}"\n'
        "trap 'kill $child; wait $child; exit 0' TERM\nwait \"$child\"\n"
    )
    wrapper.chmod(0o755)
    supervisor = SupervisedOpa(wrapper, REPO / "policies")
    try:
        # when modgate starts it, then the start fails closed, naming both pids
        with pytest.raises(ConfigError, match="not by the OPA modgate started"):
            async with supervisor:
                pass
    finally:
        _kill_pid_in(pid_file)
    assert supervisor._directory is None  # removed again


def _kill_pid_in(pid_file: Path) -> None:
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


class _listener:
    """A child Python process listening on a Unix socket until the block ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> _listener:
        code = (
            "import socket, sys, time\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()\n"
            "print('ready', flush=True); time.sleep(60)\n"
        )
        self._process = subprocess.Popen(
            [sys.executable, "-c", code, str(self.path)], stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        assert self._process.stdout.readline().strip() == "ready"
        self.pid = self._process.pid
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()


# --- a remote OPA that wants a token -----------------------------------------------------

OPA_TOKEN = "opa-token-for-the-tests-0123456789abcdef0123"


@pytest.fixture(scope="module")
def token_opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaServer]:
    """OPA as compose.yaml runs it: token authentication, deploy/opa/authz.rego."""
    work = tmp_path_factory.mktemp("token-opa")
    token_file = work / "opa-token"
    token_file.write_text(f"{OPA_TOKEN}\n")
    server = OpaServer(
        REPO / "policies",
        log_path=work / "opa.log",
        extra_args=(
            "--authentication=token",
            "--authorization=basic",
            f"--set-file=modgate.gateway_token={token_file}",
            str(REPO / "deploy/opa"),
        ),
        token=OPA_TOKEN,
    )
    with server:
        yield server


def remote_gateway(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa: OpaServer,
    public: UpstreamServer,
    token: str | None,
) -> GatewayProcess:
    env = gateway_env(pki, postgres, opa.url, public.url, "")
    del env["MODGATE_UPSTREAM_PRIVATE"]
    if token is not None:
        token_file = tmp_path / "opa-token"
        token_file.write_text(f"{token}\n")
        token_file.chmod(0o600)
        env["MODGATE_POLICY_OPA_TOKEN_FILE"] = str(token_file)
    return GatewayProcess(env, pki.ca_cert, tmp_path / "modgate.log")


def test_remote_opa_with_modgate_token_decides(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    token_opa: OpaServer,
    public_upstream: UpstreamServer,
    alice: dict[str, str],
) -> None:
    # given an OPA that wants a token, and modgate given that token in a file
    gateway = remote_gateway(tmp_path, pki, postgres, token_opa, public_upstream, OPA_TOKEN)
    with gateway, client_for(gateway, pki) as http:
        # when modules are asked for, then the policy decides them
        assert http.get(ALLOWED, headers=alice).status_code == 200
        denied = http.get(BLACKLISTED, headers=alice)
        assert denied.status_code == 403 and "SEC-42" in denied.text
        assert http.get("/readyz").status_code == 200
    # and the token is nowhere in modgate's log
    assert OPA_TOKEN not in gateway.log_path.read_text()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "policy engine refused modgate (HTTP 401)"),
        ("a-wrong-token-0123456789abcdef0123456789", "policy engine refused modgate's token"),
    ],
    ids=["no-token", "wrong-token"],
)
def test_remote_opa_refusing_modgate_credentials_is_a_503_with_a_reason(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    token_opa: OpaServer,
    public_upstream: UpstreamServer,
    alice: dict[str, str],
    token: str | None,
    reason: str,
) -> None:
    # given an OPA that wants a token, and modgate without it (or with a wrong one)
    gateway = remote_gateway(tmp_path, pki, postgres, token_opa, public_upstream, token)
    with gateway, client_for(gateway, pki) as http:
        # when a module is asked for
        response = http.get(ALLOWED, headers=alice)
        # then it is refused, saying why, and recorded as policy_unreachable
        assert response.status_code == 503
        assert reason in response.text
        assert http.get("/readyz").status_code == 503
    rows = audit_rows(postgres.libpq_dsn(), "request_id = $1", response.headers["X-Request-Id"])
    assert [row["error_code"] for row in rows] == ["policy_unreachable"]


async def test_remote_opa_over_https_is_verified_against_policy_opa_ca_file(
    tmp_path: Path, pki: DevPki
) -> None:
    # given an OPA serving https with a certificate of a private CA
    tls = (pki.server_cert, pki.server_key, pki.ca_cert)
    with OpaServer(REPO / "policies", log_path=tmp_path / "opa.log", tls=tls) as opa:
        trusted = OpaEndpoint.for_url(opa.url, ca_file=str(pki.ca_cert))
        untrusted = OpaEndpoint.for_url(opa.url)
        # when modgate asks it with that CA, then it gets decisions
        async with OpaPolicyEngine(trusted, "modgate/decision", 2, 0) as engine:
            assert await engine.document("modgate/config_ok") is True
        # and without it (the system's CAs) nothing is taken from that server
        async with OpaPolicyEngine(untrusted, "modgate/decision", 2, 0) as engine:
            with pytest.raises(PolicyError, match=r"certificate .* policy\.opa_ca_file"):
                await engine.document("modgate/config_ok")
