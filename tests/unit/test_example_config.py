"""modgate.example.toml: it parses, it states the defaults, and it names every key.

The example is the key-by-key reference users copy from, so a key added to Settings without
a commented entry here (meaning, default, env name) fails this test.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from gateway.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "modgate.example.toml"

SECTIONS = [(f.name, f.default_factory()) for f in dataclasses.fields(Settings)]
KEYS = [
    (section, key.name) for section, defaults in SECTIONS for key in dataclasses.fields(defaults)
]
COMPUTED = {("upstream", "public")}
"""Keys whose default is computed at start-up, so the file shows them commented out."""


def section_text(section: str) -> str:
    """The lines of ``[section]`` up to the next section header."""
    text = EXAMPLE.read_text(encoding="utf-8")
    match = re.search(rf"^\[{section}\]\n(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, f"no [{section}] section in {EXAMPLE.name}"
    return match.group(1)


def test_example_config_loads_to_exactly_the_defaults() -> None:
    # given the example file and no MODGATE_* variables
    # when it is loaded the way the CLI loads it
    settings = load_settings(EXAMPLE, env={})
    # then every value is the built-in default (upstream.public stays empty: only
    # `modgate serve` computes it, from $GOPROXY or `go env GOPROXY`)
    assert settings == Settings()
    assert settings.upstream.public == ()


@pytest.mark.parametrize(("section", "key"), KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_every_settings_key_is_in_the_example(section: str, key: str) -> None:
    document = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    if (section, key) in COMPUTED:
        assert key not in document.get(section, {}), f"{section}.{key} is computed: comment it"
        assert re.search(rf"^# {key} = ", section_text(section), re.MULTILINE)
    else:
        assert key in document.get(section, {}), f"{section}.{key} missing from the example"


@pytest.mark.parametrize(("section", "key"), KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_every_key_names_its_environment_variable(section: str, key: str) -> None:
    env_name = f"MODGATE_{section.upper()}_{key.upper()}"
    assert env_name in section_text(section)


def test_example_has_no_section_settings_does_not_know() -> None:
    document = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert set(document) == {name for name, _ in SECTIONS}


def test_environment_overrides_the_example_and_lists_are_comma_separated() -> None:
    settings = load_settings(
        EXAMPLE,
        env={
            "MODGATE_SERVER_PORT": "9443",
            "MODGATE_UPSTREAM_PUBLIC": "https://a.example, https://b.example",
            "MODGATE_UPSTREAM_PRIVATE": "http://athens:3000",
        },
    )
    assert settings.server.port == 9443
    assert settings.upstream.public == ("https://a.example", "https://b.example")
    assert settings.upstream.private == ("http://athens:3000",)
