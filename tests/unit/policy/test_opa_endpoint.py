"""OpaEndpoint and the remote OPA's credentials: read once at start-up, never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.certs import DevPki
from gateway.errors import ConfigError
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine, normalise_path, remote_endpoint
from gateway.settings import PolicySettings

URL = "https://opa.internal:8181"


def test_token_file_is_read_with_blanks_stripped(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  s3cret-token\n\n")
    endpoint = remote_endpoint(PolicySettings(opa_url=URL, opa_token_file=str(token_file)))
    assert endpoint.token == "s3cret-token"


def test_token_from_the_setting_is_used_as_given() -> None:
    assert remote_endpoint(PolicySettings(opa_url=URL, opa_token="abc")).token == "abc"


def test_empty_token_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(" \n")
    with pytest.raises(ConfigError, match=r"policy\.opa_token_file: .* is empty"):
        remote_endpoint(PolicySettings(opa_url=URL, opa_token_file=str(token_file)))


def test_unreadable_token_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy\.opa_token_file: cannot read"):
        remote_endpoint(PolicySettings(opa_url=URL, opa_token_file=str(tmp_path)))


@pytest.mark.parametrize("token", ["two words", "tab\there", "caf\u00e9"], ids=repr)
def test_token_that_is_not_one_ascii_word_is_refused(token: str) -> None:
    with pytest.raises(ConfigError, match=r"policy\.opa_token: the token must be one word"):
        remote_endpoint(PolicySettings(opa_url=URL, opa_token=token))


def test_endpoint_never_shows_its_token() -> None:
    endpoint = OpaEndpoint.for_url(URL, token="s3cret-token")
    assert "s3cret-token" not in repr(endpoint)
    assert "s3cret-token" not in endpoint.describe()


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://opa:8181", "http://opa:8181"),
        ("http://opa:8181/v1/data/ignored", "http://opa:8181"),
        ("https://opa.internal", "https://opa.internal:443"),
        ("http://[::1]:8181", "http://[::1]:8181"),
    ],
)
def test_only_scheme_host_and_port_of_the_url_are_used(url: str, base: str) -> None:
    assert OpaEndpoint.for_url(url).base_url == base


@pytest.mark.parametrize("url", ["opa:8181", "ftp://opa", "http://opa:99999"])
def test_url_that_is_no_http_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"policy\.opa_url"):
        OpaEndpoint.for_url(url)


async def test_ca_file_that_is_no_pem_bundle_is_refused_at_start(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    engine = OpaPolicyEngine(OpaEndpoint.for_url(URL, ca_file=str(ca)), "modgate/decision", 1, 0)
    with pytest.raises(ConfigError, match=r"policy\.opa_ca_file"):
        async with engine:
            pass


@pytest.mark.parametrize("path", ["modgate/decision", "/modgate/decision/", "modgate.decision"])
def test_decision_path_spellings_name_the_same_document(path: str) -> None:
    assert normalise_path(path) == "modgate/decision"


def test_serve_with_an_empty_token_file_stops_with_one_line_naming_the_key(
    tmp_path: Path, pki: DevPki
) -> None:
    # given `modgate serve` pointed at a remote OPA whose token file is empty
    token_file = tmp_path / "token"
    token_file.write_text("\n")
    env = {
        **os.environ,
        "MODGATE_POLICY_OPA_URL": URL,
        "MODGATE_POLICY_OPA_TOKEN_FILE": str(token_file),
        "MODGATE_TLS_CERT_FILE": str(pki.server_cert),
        "MODGATE_TLS_KEY_FILE": str(pki.server_key),
        "MODGATE_UPSTREAM_PUBLIC": "http://127.0.0.1:9",
        "MODGATE_AUDIT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/a.db",
    }
    # when it starts
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # then it refuses before binding, with one line and exit status 2
    assert done.returncode == 2
    assert done.stderr.startswith("modgate: config key policy.opa_token_file: ")
    assert "Traceback" not in done.stderr
