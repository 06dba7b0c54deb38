"""Semantic versions as x/mod/semver and module/pseudo.go define them."""

import pytest

from gateway.goproxy import semver


@pytest.mark.parametrize(
    ("version", "canonical"),
    [
        ("v1", "v1.0.0"),
        ("v1.2", "v1.2.0"),
        ("v1.2.3", "v1.2.3"),
        ("v1.2.3-pre.1", "v1.2.3-pre.1"),
        ("v1.2.3+meta", "v1.2.3"),
        ("v2.0.0+incompatible", "v2.0.0+incompatible"),
        ("1.2.3", ""),
        ("v01.2.3", ""),
        ("v1.2.3-01", ""),
        ("master", ""),
    ],
)
def test_canonical_form(version: str, canonical: str) -> None:
    assert semver.canonical(version) == canonical


@pytest.mark.parametrize(
    ("version", "pseudo"),
    [
        ("v0.0.0-20191109021931-daa7c04131f5", True),
        ("v1.2.4-0.20191109021931-daa7c04131f5", True),
        ("v1.2.3-pre.0.20191109021931-daa7c04131f5", True),
        ("v1.2.3", False),
        ("v1.2.3-pre", False),
    ],
)
def test_pseudo_version_recognition(version: str, pseudo: bool) -> None:
    assert semver.is_pseudo(version) is pseudo
