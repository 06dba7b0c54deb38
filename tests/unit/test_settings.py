"""Settings: defaults with no file, MODGATE_* overrides, and clear errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import (
    Settings,
    first_proxy_url,
    for_serving,
    listen_address,
    load_settings,
)

PLAIN = {"MODGATE_TLS_PLAIN_HTTP": "true"}


def test_no_file_and_no_overrides_gives_the_defaults() -> None:
    assert load_settings(None, env={}) == Settings()


def test_env_overrides_file_and_lists_are_comma_separated(tmp_path: Path) -> None:
    config = tmp_path / "modgate.toml"
    config.write_text('[upstream]\npublic = ["https://a.example"]\n[server]\nport = 9000\n')
    env = {"MODGATE_UPSTREAM_PUBLIC": "https://b.example, https://c.example"}
    settings = load_settings(config, env=env)
    assert settings.upstream.public == ("https://b.example", "https://c.example")
    assert settings.server.port == 9000


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[server]\nprot = 1\n", {}, "unknown config key(s) in [server]: prot"),
        ("[nope]\n", {}, "unknown config section(s): nope"),
        ("", {"MODGATE_SERVER_PORT": "eighty"}, "MODGATE_SERVER_PORT: bad value 'eighty'"),
        ("[server]\nport = 70000\n", {}, "server.port: 70000 is not a TCP port"),
        ('[tls]\nplain_http = "maybe"\n', {}, "tls.plain_http: bad value"),
        ('[upstream]\npublic = ["ftp://x.example"]\n', {}, "is not an http(s) URL"),
        (
            '[upstream]\npublic = ["https://a.example"]\nprivate = ["https://a.example/"]\n',
            {},
            "private module paths must never reach a public upstream",
        ),
        ('[tls]\nplain_http = true\ncert_file = "x.pem"\n', {}, "contradicts"),
        ("this is = = not toml", {}, "is not valid TOML"),
        ("", {"MODGATE_SERVER_PROT": "1"}, "unknown setting(s) in the environment"),
        ("[server]\nport = 8443.5\n", {}, "expected a whole number"),
        ("[upstream]\nconnect_timeout_s = 0\n", {}, "connect_timeout_s: 0.0 must be positive"),
        ("[policy]\nretries = -1\n", {}, "policy.retries: -1 must not be negative"),
        (
            '[server]\nhost = "0.0.0.0"\n[tls]\nplain_http = true\n',
            {},
            "only on a loopback address",
        ),
        ('[tls]\nclient_cert = "yes"\n', {}, "tls.client_cert: 'yes' is not none, optional or"),
        ('[tls]\nclient_cert = "required"\n', {}, "needs tls.client_ca_file"),
        ('[tls]\nclient_crl_file = "/no/such.crl"\n', {}, "tls.client_crl_file: no such file"),
        ('[tls]\nclient_ca_file = "/no/such/ca.pem"\n', {}, "tls.client_ca_file: no such file"),
        ('[tls]\nplain_http = true\nclient_cert = "optional"\n', {}, "tls.client_cert needs TLS"),
        ('[identity]\ncert_subject_from = ["cn", "ou"]\n', {}, "identity.cert_subject_from"),
        ("", {"MODGATE_IDENTITY_CERT_SUBJECT_FROM": ""}, "identity.cert_subject_from"),
        ('[log]\nformat = "logfmt"\n', {}, "log.format: 'logfmt' is not text or json"),
        ("", {"MODGATE_LOG_LEVEL": "INFO"}, "log.level: 'INFO' is not one of debug, info"),
        ('[metrics]\nlisten = "9464"\n', {}, "metrics.listen: '9464' is not host:port"),
        ('[metrics]\nlisten = "127.0.0.1:99999"\n', {}, "is not host:port"),
        ('[metrics]\nlisten = "127.0.0.1:9464/metrics"\n', {}, "is not host:port"),
        (
            '[metrics]\nlisten = "127.0.0.1:8443"\n',
            {},
            "metrics.listen: '127.0.0.1:8443' is the main listener",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "modgate.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env=env)
    assert message in caught.value.reason


def test_a_client_ca_without_asking_for_client_certificates_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "client-ca.pem"
    bundle.write_text("")
    with pytest.raises(ConfigError, match=r"tls\.client_cert is none"):
        load_settings(None, env={"MODGATE_TLS_CLIENT_CA_FILE": str(bundle)})


def test_public_upstream_defaults_to_the_first_url_of_goproxy() -> None:
    env = {**PLAIN, "GOPROXY": "direct,https://mirror.example|https://second.example"}
    settings = for_serving(load_settings(None, env=env), env=env)
    assert settings.upstream.public == ("https://mirror.example",)


def test_public_upstream_falls_back_to_go_env_goproxy(tmp_path: Path) -> None:
    env = {
        **PLAIN,
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GOENV": str(tmp_path / "goenv"),
    }
    (tmp_path / "goenv").write_text("GOPROXY=https://from-go-env.example\n")
    settings = for_serving(load_settings(None, env=env), env=env)
    assert settings.upstream.public == ("https://from-go-env.example",)


def test_without_goproxy_or_go_serving_is_refused_naming_the_key() -> None:
    env = {**PLAIN, "PATH": ""}
    with pytest.raises(ConfigError, match="MODGATE_UPSTREAM_PUBLIC"):
        for_serving(load_settings(None, env=env), env=env)


def test_serving_without_tls_files_or_explicit_plain_http_is_refused() -> None:
    env = {"GOPROXY": "https://mirror.example"}
    with pytest.raises(ConfigError, match="MODGATE_TLS_CERT_FILE"):
        for_serving(load_settings(None, env=env), env=env)


@pytest.mark.parametrize(
    ("goproxy", "first"),
    [("off", ""), ("direct", ""), ("https://a.example,direct", "https://a.example"), ("", "")],
)
def test_first_proxy_url(goproxy: str, first: str) -> None:
    assert first_proxy_url(goproxy) == first


@pytest.mark.parametrize(
    ("listen", "address"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9100", ("::1", 9100))],
)
def test_metrics_listen_is_a_host_and_a_port(listen: str, address: tuple[str, int]) -> None:
    assert listen_address(listen) == address
    assert load_settings(None, env={"MODGATE_METRICS_LISTEN": listen}).metrics.listen == listen


def test_an_empty_metrics_listen_turns_the_listener_off() -> None:
    assert load_settings(None, env={"MODGATE_METRICS_LISTEN": ""}).metrics.listen == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODGATE_SERVER_TRUSTED_PROXIES": "10.0.0.0/8,proxy.corp"}, "server.trusted_proxies"),
        ({"MODGATE_IDENTITY_FORWARDED_CLIENT_CERT": "true"}, "needs server.trusted_proxies"),
        (
            {
                "MODGATE_SERVER_TRUSTED_PROXIES": "10.0.0.1",
                "MODGATE_IDENTITY_FORWARDED_CLIENT_CERT": "1",
            },
            "needs identity.forwarded_ca_file",
        ),
        ({"MODGATE_IDENTITY_FORWARDED_CA_FILE": "/nonexistent"}, "forwarded_client_cert is off"),
        (
            {
                "MODGATE_SERVER_TRUSTED_PROXIES": "10.0.0.1",
                "MODGATE_IDENTITY_FORWARDED_CLIENT_CERT": "1",
                "MODGATE_IDENTITY_FORWARDED_CA_FILE": "/nonexistent",
            },
            "no such file",
        ),
    ],
)
def test_forwarded_identity_settings_are_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env=env)


def test_trusted_proxies_take_addresses_and_networks() -> None:
    env = {"MODGATE_SERVER_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7, 2001:db8::/32"}
    assert load_settings(None, env=env).server.trusted_proxies == (
        "10.0.0.0/8",
        "192.0.2.7",
        "2001:db8::/32",
    )
