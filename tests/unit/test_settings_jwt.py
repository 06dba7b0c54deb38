"""JWT settings: ``[[jwt.issuers]]`` tables with CI presets and algorithm defaults, and clear
errors for every issuer that could not verify a token safely (no audience, a key set over
http, HS256 next to a JWKS, a short secret, ...)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.identity.presets import PRESETS
from gateway.settings import JwtSettings, Settings, load_settings

SSO = 'name = "sso"\nissuer = "https://sso.example"\naudience = ["modgate"]\n'
"""The keys every plain (preset-less) issuer needs besides its key source."""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Paths for the TOML templates: a JWKS, secrets of 32 and 31 bytes, a CA, a missing file."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * 32 + b"\n")
    short = tmp_path / "short-secret"
    short.write_bytes(b"s" * 31 + b"\n")
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    return {
        "jwks": str(jwks),
        "secret": str(secret),
        "short": str(short),
        "ca": str(ca),
        "missing": str(tmp_path / "missing"),
    }


def load(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> Settings:
    config = tmp_path / "modgate.toml"
    config.write_text(toml)
    return load_settings(config, env={} if env is None else env)


def test_no_jwt_section_gives_the_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "").jwt == JwtSettings()


def test_the_github_preset_needs_only_an_audience(tmp_path: Path) -> None:
    (issuer,) = load(tmp_path, '[[jwt.issuers]]\npreset = "github"\naudience = ["m"]\n').jwt.issuers
    assert issuer.name == "github"
    assert issuer.issuer == "https://token.actions.githubusercontent.com"
    assert issuer.audience == ("m",)
    assert issuer.discovery is True
    assert issuer.subject_claim == "repository"
    assert issuer.subject_prefix == "ci:github:"
    assert issuer.groups == ("ci",)
    assert issuer.algorithms == ("RS256",)
    assert issuer.detail_claims == PRESETS["github"]["detail_claims"]


def test_a_key_set_in_the_table_overrides_the_preset_and_drops_its_discovery(
    tmp_path: Path, files: dict[str, str]
) -> None:
    toml = (
        '[[jwt.issuers]]\npreset = "github"\naudience = ["m"]\n'
        f'issuer = "https://ghes.example/_services/token"\njwks_file = "{files["jwks"]}"\n'
    )
    (issuer,) = load(tmp_path, toml).jwt.issuers
    assert issuer.issuer == "https://ghes.example/_services/token"
    assert issuer.jwks_file == files["jwks"]
    assert issuer.discovery is False
    assert issuer.subject_prefix == "ci:github:"
    assert issuer.algorithms == ("RS256",)


def test_the_gitlab_preset_keeps_a_self_managed_issuer(tmp_path: Path) -> None:
    toml = '[[jwt.issuers]]\npreset = "gitlab"\naudience = ["m"]\nissuer = "https://gl.example"\n'
    (issuer,) = load(tmp_path, toml).jwt.issuers
    assert issuer.name == "gitlab"
    assert issuer.issuer == "https://gl.example"
    assert issuer.discovery is True
    assert issuer.subject_claim == "project_path"
    assert issuer.subject_prefix == "ci:gitlab:"


def test_an_unknown_preset_is_refused_naming_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"preset 'circleci' is not one of github, gitlab"):
        load(tmp_path, '[[jwt.issuers]]\npreset = "circleci"\naudience = ["m"]\n')


@pytest.mark.parametrize(
    ("source", "algorithms"),
    [
        ('jwks_url = "https://sso.example/jwks"\n', ("RS256", "PS256", "ES256", "EdDSA")),
        ("discovery = true\n", ("RS256", "PS256", "ES256", "EdDSA")),
        ('jwks_file = "{jwks}"\n', ("RS256", "PS256", "ES256", "EdDSA")),
        ('shared_secret_file = "{secret}"\n', ("HS256",)),
    ],
)
def test_default_algorithms_follow_the_key_source(
    tmp_path: Path, files: dict[str, str], source: str, algorithms: tuple[str, ...]
) -> None:
    toml = "[[jwt.issuers]]\n" + SSO + source.format(**files)
    (issuer,) = load(tmp_path, toml).jwt.issuers
    assert issuer.algorithms == algorithms


def test_a_ca_file_goes_with_a_key_set_fetched_over_https(
    tmp_path: Path, files: dict[str, str]
) -> None:
    toml = f'[[jwt.issuers]]\n{SSO}discovery = true\nca_file = "{files["ca"]}"\n'
    (issuer,) = load(tmp_path, toml).jwt.issuers
    assert issuer.ca_file == files["ca"]


ISSUER = "[[jwt.issuers]]\n"
JWKS_URL = 'jwks_url = "https://sso.example/jwks"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            ISSUER + 'issuer = "https://sso.example"\naudience = ["m"]\n' + JWKS_URL,
            "jwt.issuers[1]: set name",
        ),
        (ISSUER + 'name = "sso"\naudience = ["m"]\n' + JWKS_URL, "jwt issuer 'sso': set issuer"),
        (
            ISSUER + 'name = "sso"\nissuer = "https://sso.example"\n' + JWKS_URL,
            "jwt issuer 'sso': set audience",
        ),
        (ISSUER + SSO, "set exactly one of jwks_url, jwks_file, discovery = true or"),
        (ISSUER + SSO, "(found none)"),
        (ISSUER + SSO + JWKS_URL + 'jwks_file = "{jwks}"\n', "(found jwks_url, jwks_file)"),
        (
            ISSUER + SSO + 'discovery = true\nshared_secret_file = "{secret}"\n',
            "(found discovery, shared_secret_file)",
        ),
        (
            ISSUER + SSO + 'jwks_url = "http://sso.example/jwks"\n',
            "jwks_url 'http://sso.example/jwks' must be an https URL",
        ),
        (
            ISSUER + 'name = "sso"\nissuer = "http://sso.example"\naudience = ["m"]\n'
            "discovery = true\n",
            "issuer 'http://sso.example' must be an https URL",
        ),
        (ISSUER + SSO + 'jwks_file = "{missing}"\n', "jwks_file: no such file"),
        (ISSUER + SSO + 'shared_secret_file = "{missing}"\n', "shared_secret_file: no such file"),
        (ISSUER + SSO + JWKS_URL + 'ca_file = "{missing}"\n', "ca_file: no such file"),
        (
            ISSUER + SSO + 'jwks_file = "{jwks}"\nca_file = "{ca}"\n',
            "ca_file is for a key set fetched over https",
        ),
        (
            ISSUER + SSO + JWKS_URL + 'algorithms = ["RS256", "none"]\n',
            "algorithms ['none'] not supported",
        ),
        (
            ISSUER + SSO + JWKS_URL + 'algorithms = ["HS512"]\n',
            "algorithms ['HS512'] not supported",
        ),
        (ISSUER + SSO + JWKS_URL + 'algorithms = ["RS256", "HS256"]\n', "key-confusion attack"),
        (ISSUER + SSO + 'discovery = true\nalgorithms = ["HS256"]\n', "key-confusion attack"),
        (
            ISSUER + SSO + 'shared_secret_file = "{secret}"\nalgorithms = ["RS256"]\n',
            "a shared secret verifies HS256 only",
        ),
        (
            ISSUER + SSO + 'shared_secret_file = "{short}"\n',
            "shared_secret_file holds fewer than 32 bytes",
        ),
        (ISSUER + SSO + JWKS_URL + "leeway_s = 301\n", "leeway_s 301.0 is not between 0 and 300"),
        (ISSUER + SSO + JWKS_URL + "leeway_s = -1\n", "leeway_s -1.0 is not between 0 and 300"),
        (
            ISSUER + SSO + JWKS_URL + 'detail_claims = ["ref", "=sub"]\n',
            "detail_claims entry '=sub': claim or name=claim",
        ),
        (
            ISSUER + SSO + JWKS_URL + ISSUER + 'name = "other"\nissuer = "https://sso.example"\n'
            'audience = ["m"]\n' + JWKS_URL,
            "jwt issuer 'other': another issuer has the same name or iss",
        ),
        (
            ISSUER + SSO + JWKS_URL + ISSUER + 'name = "sso"\nissuer = "https://other.example"\n'
            'audience = ["m"]\n' + JWKS_URL,
            "jwt issuer 'sso': another issuer has the same name or iss",
        ),
        (
            ISSUER + SSO + JWKS_URL + "subject = 'sub'\n",
            "unknown config key(s) in [jwt.issuers[1]]",
        ),
        ("[jwt]\nrefresh_s = 0\n", "config key jwt.refresh_s: 0.0 must be positive"),
        ("[jwt]\ncache_entries = -1\n", "config key jwt.cache_entries: -1 must not be negative"),
        ('[jwt]\nissuers = "x"\n', "issuers are [[jwt.issuers]] tables of the config file"),
        ("[jwt.issuers]\n" + SSO + JWKS_URL, "expected [[jwt.issuers]] tables"),
    ],
)
def test_bad_issuers_are_refused_naming_the_problem(
    tmp_path: Path, files: dict[str, str], toml: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path, toml.format(**files))


def test_issuers_cannot_come_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MODGATE_JWT_ISSUERS: .*config file, not a variable"):
        load(tmp_path, "", env={"MODGATE_JWT_ISSUERS": "x"})


def test_the_refresh_interval_can_come_from_the_environment(tmp_path: Path) -> None:
    jwt = load(tmp_path, "[jwt]\nrefresh_s = 120\n", env={"MODGATE_JWT_REFRESH_S": "60"}).jwt
    assert jwt.refresh_s == 60.0
