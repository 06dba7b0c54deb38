"""Policy data that cannot fail open, and module paths matched ignoring case.

Hardening points 1 and 20, against the real `modgate serve` over TLS with its supervised
OPA (`opa run --watch` on a copy of `policies/` in a temporary directory), real PostgreSQL
and real upstreams on 127.0.0.1. While the gateway runs, the tests edit the copy's policy
data the ways a person gets it wrong, wait for OPA's reload (it takes milliseconds; the
wait is bounded), and check that the gateway refuses instead of routing private paths to
the public upstream or serving blacklisted versions; then they put the data back and
check that requests work again.

Case aliases: a code host such as GitHub serves one repository under every spelling of
its path, so the upstreams here serve `example.com/Insecure` and `corp.example.com/MyOrg/
secret` as well, and the tests check the policy still blocks and routes them.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from gateway.certs import DevPki
from tests.conftest import HELLO, REPO, Tokens
from tests.support.cli import run_modgate
from tests.support.gateway import GatewayProcess
from tests.support.gomodules import build_module, go_env, go_mod_download, write_proxy_tree
from tests.support.opa import find_opa
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

GOOD_DATA: dict[str, Any] = {
    "revision": "hardening-policy-data.1",
    "private": {"patterns": ["corp.example.com/myorg/*"], "groups": ["developers"]},
    "blacklist_kinds": ["info", "zip", "latest"],
    "blacklist": [
        {
            "module": "example.com/insecure",
            "versions": ["v1.0.1"],
            "reason": "CVE-2024-1234: remote code execution",
            "ticket": "SEC-42",
        }
    ],
}

PUBLIC = [("example.com/hello", "v1.0.0"), ("example.com/insecure", "v1.0.1")]
PUBLIC_ALIASES = [("example.com/Insecure", "v1.0.1")]
PRIVATE = [("corp.example.com/myorg/secret", "v1.0.0"), ("corp.example.com/MyOrg/secret", "v1.0.0")]

HELLO_INFO = "/example.com/hello/@v/v1.0.0.info"
PRIVATE_INFO = "/corp.example.com/myorg/secret/@v/v1.0.0.info"
BLACKLISTED_ZIP = "/example.com/insecure/@v/v1.0.1.zip"
REFUSED_FOR_DATA = "blocked by policy: malformed policy data: "
RELOAD_TIMEOUT_S = 10.0


@dataclass
class PolicyCopy:
    """The copy of `policies/` the gateway's supervised OPA watches."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "modgate" / "config"

    def write(self, relative: str, document: object) -> None:
        """Write a JSON file the way an editor should: a new file renamed over the old."""
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.tmp")
        scratch.write_text(json.dumps(document))
        os.replace(scratch, target)

    def restore(self) -> None:
        """Remove every data file but the good one, then write the good one."""
        good = self.config / "data.json"
        for path in self.root.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".yaml", ".yml") and path != good:
                path.unlink()
        for stray_dir in (self.root / "modgat", self.root / "modgate" / "conf"):
            shutil.rmtree(stray_dir, ignore_errors=True)
        self.write("modgate/config/data.json", GOOD_DATA)


@dataclass(frozen=True)
class Setup:
    gateway: GatewayProcess
    policies: PolicyCopy
    public: UpstreamServer
    private: UpstreamServer
    tokens: Tokens


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    tokens: Tokens,
) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("policy-data")
    built = {
        (path, version): build_module(work / "src", path, version, {"lib.go": HELLO % path})
        for path, version in PUBLIC + PUBLIC_ALIASES + PRIVATE
    }
    write_proxy_tree(work / "public", [built[k] for k in PUBLIC + PUBLIC_ALIASES])
    write_proxy_tree(work / "private", [built[k] for k in PRIVATE])
    policies = PolicyCopy(work / "policies")
    shutil.copytree(REPO / "policies", policies.root)
    policies.restore()
    with UpstreamServer(work / "public") as public, UpstreamServer(work / "private") as private:
        env = {
            "MODGATE_AUDIT_DATABASE_URL": postgres.dsn(),
            "MODGATE_POLICY_POLICIES_DIR": str(policies.root),  # supervised OPA, --watch
            "MODGATE_POLICY_OPA_BINARY": str(find_opa()),
            "MODGATE_UPSTREAM_PUBLIC": public.url,
            "MODGATE_UPSTREAM_PRIVATE": private.url,
            "MODGATE_TLS_CERT_FILE": str(pki.server_cert),
            "MODGATE_TLS_KEY_FILE": str(pki.server_key),
            "MODGATE_IDENTITY_TOKEN_CACHE_S": "0",
            "MODGATE_UPSTREAM_READ_TIMEOUT_S": "5",
            "MODGATE_UPSTREAM_PROBE_CACHE_S": "0",  # /readyz looks again every time
        }
        with GatewayProcess(env, pki.ca_cert, work / "modgate.log") as gateway:
            yield Setup(gateway, policies, public, private, tokens)


@pytest.fixture
def client(setup: Setup) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=str(setup.gateway.ca_file))
    auth = {"Authorization": f"Bearer {setup.tokens.alice}"}
    with httpx.Client(base_url=setup.gateway.url, verify=context, headers=auth, timeout=30) as http:
        yield http


@pytest.fixture
def policies(setup: Setup, client: httpx.Client) -> Iterator[PolicyCopy]:
    """The policy copy, in its good state before and after each test."""
    setup.policies.restore()
    _wait_until(client, _works_as_intended)
    yield setup.policies
    setup.policies.restore()
    _wait_until(client, _works_as_intended)


def _works_as_intended(client: httpx.Client) -> bool:
    private = client.get(PRIVATE_INFO)
    blacklisted = client.get(BLACKLISTED_ZIP)
    return (
        private.status_code == 200
        and blacklisted.status_code == 403
        and "is blacklisted: CVE-2024-1234" in blacklisted.text
        and client.get(HELLO_INFO).status_code == 200
    )


def _refused_for_data(client: httpx.Client) -> bool:
    response = client.get(PRIVATE_INFO)
    return response.status_code == 403 and REFUSED_FOR_DATA in response.text


def _wait_until(client: httpx.Client, condition: Callable[[httpx.Client], bool]) -> None:
    """Poll until OPA has reloaded the edited data (bounded)."""
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    while not condition(client):
        assert time.monotonic() < deadline, f"no reload within {RELOAD_TIMEOUT_S} s"
        time.sleep(0.05)


def _renamed(key: str, new: str) -> dict[str, Any]:
    return {(new if name == key else name): value for name, value in GOOD_DATA.items()}


def _rename_key(key: str, new: str) -> Callable[[PolicyCopy], None]:
    return lambda copy: copy.write("modgate/config/data.json", _renamed(key, new))


def _replace_data(document: object) -> Callable[[PolicyCopy], None]:
    return lambda copy: copy.write("modgate/config/data.json", document)


def _add_file(relative: str, document: object) -> Callable[[PolicyCopy], None]:
    return lambda copy: copy.write(relative, document)


def _move_data_to(relative: str) -> Callable[[PolicyCopy], None]:
    def move(copy: PolicyCopy) -> None:
        copy.write(relative, GOOD_DATA)
        (copy.config / "data.json").unlink()

    return move


UNKNOWN = "unknown key {!r} (allowed: blacklist, blacklist_kinds, ci, private, revision)"
OLD_PLACE = "found at the old place, which no rule reads; move it into policies/modgate/config/"

MISTAKES = [
    pytest.param(
        _rename_key("private", "privat"),
        ["required key private is missing", UNKNOWN.format("privat").replace("'", '"')],
        id="private-misspelt-privat",
    ),
    pytest.param(
        _rename_key("private", "Private"),
        ["required key private is missing", UNKNOWN.format("Private").replace("'", '"')],
        id="private-capitalised",
    ),
    pytest.param(
        _rename_key("blacklist", "blacklists"),
        ["required key blacklist is missing", UNKNOWN.format("blacklists").replace("'", '"')],
        id="blacklist-misspelt-blacklists",
    ),
    pytest.param(
        _replace_data({}),
        ["required key private is missing", "required key blacklist is missing"],
        id="empty-object",
    ),
    pytest.param(
        _replace_data({"modgate": GOOD_DATA}),
        ['unknown key "modgate"', 'without a "modgate" wrapper'],
        id="old-modgate-wrapper-in-config",
    ),
    pytest.param(
        _add_file("modgate/config/team.json", {"privat": {"patterns": [], "groups": []}}),
        [UNKNOWN.format("privat").replace("'", '"')],
        id="second-file-in-config-with-unknown-key",
    ),
    pytest.param(
        _add_file("data.json", {"modgate": GOOD_DATA}),
        [
            "data.modgate.blacklist, data.modgate.blacklist_kinds, data.modgate.private, "
            "data.modgate.revision " + OLD_PLACE
        ],
        id="old-data-json-at-the-root",
    ),
    pytest.param(
        _move_data_to("modgate/data.json"),
        [OLD_PLACE, "no policy data at data.modgate.config"],
        id="data-one-directory-too-high",
    ),
    pytest.param(
        _move_data_to("modgat/config/data.json"),
        ["no policy data at data.modgate.config"],
        id="namespace-misspelt-modgat",
    ),
]


@pytest.mark.parametrize(("mistake", "reasons"), MISTAKES)
def test_policy_data_mistake_refuses_every_request_until_it_is_fixed(
    setup: Setup,
    policies: PolicyCopy,
    client: httpx.Client,
    mistake: Callable[[PolicyCopy], None],
    reasons: list[str],
) -> None:
    # Given a running gateway whose private path goes to the private upstream only
    public_before = len(setup.public.paths())

    # When the policy data is edited wrongly while it runs
    mistake(policies)
    _wait_until(client, _refused_for_data)

    # Then a private module is refused, naming the problem, and never sent public
    private = client.get(PRIVATE_INFO)
    assert private.status_code == 403
    for reason in reasons:
        assert reason in private.text, private.text
    assert all(line.startswith("blocked by policy: ") for line in private.text.splitlines())
    # ... a blacklisted version is refused too, and so is every other request
    assert client.get(BLACKLISTED_ZIP).status_code == 403
    hello = client.get(HELLO_INFO)
    assert hello.status_code == 403 and REFUSED_FOR_DATA in hello.text
    assert not [p for p in setup.public.paths() if "corp.example.com" in p]
    assert len(setup.public.paths()) == public_before  # nothing at all was forwarded
    # ... and /readyz no longer says ready, naming the cause to operators
    operator = {"Authorization": f"Bearer {setup.tokens.operator}"}
    readyz = client.get("/readyz", headers=operator)
    assert readyz.status_code == 503
    assert "policy data malformed" in readyz.text

    # And when the data is put back, requests work as intended again, and it is ready
    policies.restore()
    _wait_until(client, _works_as_intended)
    assert client.get("/readyz", headers=operator).status_code == 200


def test_case_alias_of_a_blacklisted_version_is_refused_to_the_go_command(
    setup: Setup, policies: PolicyCopy, tmp_path: Path
) -> None:
    # Given example.com/insecure@v1.0.1 blacklisted, and an upstream that also serves
    # its spelling example.com/Insecure (as GitHub does for github.com/Sirupsen/logrus)
    netrc = tmp_path / "netrc"
    netrc.write_text(
        f"machine 127.0.0.1:{setup.gateway.port} login alice password {setup.tokens.alice}\n"
    )
    env = go_env(
        GOPROXY=setup.gateway.url,
        NETRC=str(netrc),
        SSL_CERT_FILE=str(setup.gateway.ca_file),
        GONOSUMDB="example.com,corp.example.com",
        GOMODCACHE=str(tmp_path / "modcache"),
        GOPATH=str(tmp_path / "gopath"),
        GOFLAGS="-modcacherw",
        HOME=str(tmp_path),
    )

    # When a developer downloads the other spelling through modgate
    done = go_mod_download("example.com/Insecure@v1.0.1", tmp_path, env)

    # Then the go command is refused with the blacklist's reason, and no zip is fetched
    assert done.returncode != 0, done.stdout
    error = json.loads(done.stdout)["Error"]
    assert "403 Forbidden" in error
    assert "blocked by policy: example.com/Insecure@v1.0.1 is blacklisted: CVE-2024-1234" in error
    assert not [p for p in setup.public.paths() if unquote(p).startswith("/example.com/!insecure/")]


def test_case_alias_of_a_private_path_reaches_only_the_private_upstream(
    setup: Setup, policies: PolicyCopy, client: httpx.Client
) -> None:
    # Given the private pattern corp.example.com/myorg/*
    alias = "/corp.example.com/!my!org/secret/@v/v1.0.0.info"
    private_before = len(setup.private.paths())

    # When alice (developers) and bob (contractors) ask for corp.example.com/MyOrg/secret
    allowed = client.get(alias)
    bob = {"Authorization": f"Bearer {setup.tokens.bob}"}
    refused = client.get(alias, headers=bob)

    # Then alice gets it from the private upstream, bob is refused as for the real path
    assert allowed.status_code == 200, allowed.text
    assert json.loads(allowed.text)["Version"] == "v1.0.0"
    assert [unquote(p) for p in setup.private.paths()[private_before:]] == [alias]
    assert refused.status_code == 403
    assert "corp.example.com/MyOrg/secret is private; your groups [contractors]" in refused.text
    # ... and the public upstream never saw the private path in any spelling
    assert not [p for p in setup.public.paths() if "corp.example.com" in p]


def test_checksum_lookup_of_a_case_alias_of_a_private_path_is_refused(
    setup: Setup, policies: PolicyCopy, client: httpx.Client
) -> None:
    # When the go command would look up corp.example.com/MyOrg/secret's checksum
    response = client.get("/sumdb/sum.golang.org/lookup/corp.example.com/!my!org/secret@v1.0.0")

    # Then it is refused with the GONOSUMDB hint, and nothing reaches the public upstream
    assert response.status_code == 403
    assert "corp.example.com/MyOrg/secret is private" in response.text
    assert "add its path to GONOSUMDB" in response.text
    assert not [p for p in setup.public.paths() if "corp.example.com" in p]


# --- data files where no rule reads them: refused before a roll-out ------------------


@pytest.fixture
def stray_policies(tmp_path: Path) -> Path:
    """A copy of the policies with data files where OPA loads them but no rule reads them."""
    copy = tmp_path / "policies"
    shutil.copytree(REPO / "policies", copy)
    (copy / "data.json").write_text(json.dumps({"modgate": GOOD_DATA}))
    (copy / "extra.yaml").write_text("blacklist: []\n")
    (copy / "modgate" / "conf").mkdir()
    (copy / "modgate" / "conf" / "data.json").write_text("{}")
    return copy


def test_serve_refuses_to_start_on_data_files_outside_the_config_directory(
    stray_policies: Path, tmp_path: Path
) -> None:
    env = {
        "GOPROXY": "https://mirror.example",
        "MODGATE_TLS_PLAIN_HTTP": "true",
        "MODGATE_AUDIT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/audit.db",
    }
    done = run_modgate("serve", policies=stray_policies, cwd=tmp_path, env=env)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line
    assert "data file outside modgate/config/" in line
    assert "data.json, extra.yaml, modgate/conf/data.json;" in line
    assert not (tmp_path / "audit.db").exists()


def test_policy_check_lists_each_data_file_outside_the_config_directory(
    stray_policies: Path, tmp_path: Path
) -> None:
    done = run_modgate("policy", "check", policies=stray_policies, cwd=tmp_path)
    assert done.returncode == 1
    errors = done.stderr.splitlines()
    for name in ("data.json", "extra.yaml", "modgate/conf/data.json"):
        assert any(f"read by no rule: {name};" in error for error in errors), errors
    assert any(OLD_PLACE in error for error in errors)  # what the root data.json did


def test_serve_refuses_to_start_on_a_misspelt_top_level_key(tmp_path: Path) -> None:
    copy = tmp_path / "policies"
    shutil.copytree(REPO / "policies", copy)
    PolicyCopy(copy).write("modgate/config/data.json", _renamed("private", "privat"))
    env = {
        "GOPROXY": "https://mirror.example",
        "MODGATE_TLS_PLAIN_HTTP": "true",
        "MODGATE_AUDIT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/audit.db",
    }
    done = run_modgate("serve", policies=copy, cwd=tmp_path, env=env)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and "malformed policy data" in line
    assert "modgate policy check" in line  # more than one problem: where to see them all
    assert not (tmp_path / "audit.db").exists()


def test_policy_check_names_a_misspelt_top_level_key(tmp_path: Path) -> None:
    copy = tmp_path / "policies"
    shutil.copytree(REPO / "policies", copy)
    PolicyCopy(copy).write("modgate/config/data.json", _renamed("blacklist", "blacklists"))
    done = run_modgate("policy", "check", policies=copy, cwd=tmp_path)
    assert done.returncode == 1
    assert "malformed policy data: required key blacklist is missing" in done.stderr
    assert 'malformed policy data: unknown key "blacklists"' in done.stderr


def test_an_expired_entry_is_a_warning_of_policy_check_and_starts_nothing_failing(
    tmp_path: Path,
) -> None:
    """An entry past its expiry denies nothing: `policy check` warns of it, exits 0."""
    copy = tmp_path / "policies"
    shutil.copytree(REPO / "policies", copy)
    expired = {"module": "example.com/old", "versions": ["v0.1.0"], "reason": "r"}
    expired |= {"author": "compliance@corp.example", "expires": "2020-01-31"}
    data = {**GOOD_DATA, "blacklist": [*GOOD_DATA["blacklist"], expired]}
    PolicyCopy(copy).write("modgate/config/data.json", data)
    done = run_modgate("policy", "check", policies=copy, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: policy data: blacklist[" in done.stderr
    assert "(example.com/old): expired on 2020-01-31 and no longer applies" in done.stderr


def test_a_broken_hidden_versions_rule_refuses_the_list_never_serves_it_unfiltered(
    setup: Setup, client: httpx.Client
) -> None:
    """Which versions to hide cannot be told: the list is refused (fail closed), and the
    blacklisted version it would have shown is never served."""
    listing = setup.policies.root / "modgate" / "listing.rego"
    good = listing.read_text()
    insecure_list = "/example.com/insecure/@v/list"
    assert "v1.0.1" not in client.get(insecure_list).text  # hidden by the good rule
    try:
        scratch = listing.with_name(".listing.rego.tmp")
        scratch.write_text('package modgate\n\nhidden_versions := "nothing to hide"\n')
        os.replace(scratch, listing)
        _wait_until(client, lambda c: c.get(insecure_list).status_code == 503)
        response = client.get(insecure_list)
        assert "hidden_versions is not a list of versions" in response.text
    finally:
        scratch = listing.with_name(".listing.rego.tmp")
        scratch.write_text(good)
        os.replace(scratch, listing)
        _wait_until(client, lambda c: c.get(insecure_list).status_code == 200)


def test_a_blacklist_entry_lifts_after_its_expiry_day_without_a_restart(
    setup: Setup, policies: PolicyCopy, client: httpx.Client
) -> None:
    """The running gateway stops applying an entry the day after its expires date."""
    (entry,) = GOOD_DATA["blacklist"]
    for expires, status in (("2999-12-31", 403), ("2020-01-31", 200)):
        data = {**GOOD_DATA, "blacklist": [{**entry, "expires": expires, "author": "sec"}]}
        policies.write("modgate/config/data.json", data)
        _wait_until(client, lambda c, s=status: c.get(BLACKLISTED_ZIP).status_code == s)
    lifted = client.get("/example.com/insecure/@v/list")
    assert lifted.text.split() == ["v1.0.1"]  # listed again: it is no longer refused
