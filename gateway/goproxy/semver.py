"""Semantic versions as golang.org/x/mod/semver and module/pseudo.go define them.

Only what the gateway needs: validity, canonical form, major version, pseudo-version
recognition. Comparison belongs to the policy (Rego's ``semver`` builtins).
"""

import re
from dataclasses import dataclass

_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_IDENT = r"[0-9A-Za-z-]+"
_SEMVER_RE = re.compile(
    rf"^v(?P<major>{_NUM})(?:\.(?P<minor>{_NUM})(?:\.(?P<patch>{_NUM})"
    rf"(?P<pre>-{_PRE_IDENT}(?:\.{_PRE_IDENT})*)?"
    rf"(?P<build>\+{_BUILD_IDENT}(?:\.{_BUILD_IDENT})*)?)?)?$"
)
# The same expression as x/mod/module's pseudoVersionRE.
_PSEUDO_RE = re.compile(
    r"^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$",
    re.ASCII,
)
INCOMPATIBLE = "+incompatible"


@dataclass(frozen=True, slots=True)
class _Parsed:
    major: str
    minor: str
    patch: str
    pre: str
    build: str
    short: bool


def _parse(v: str) -> _Parsed | None:
    m = _SEMVER_RE.match(v)
    if m is None:
        return None
    minor, patch = m.group("minor"), m.group("patch")
    return _Parsed(
        major=m.group("major"),
        minor=minor or "0",
        patch=patch or "0",
        pre=m.group("pre") or "",
        build=m.group("build") or "",
        short=patch is None,
    )


def is_valid(v: str) -> bool:
    """Report whether ``v`` is a semantic version (``v1``, ``v1.2`` count, as in x/mod)."""
    return _parse(v) is not None


def canonical(v: str) -> str:
    """Return the canonical form of ``v`` (``v1.2`` → ``v1.2.0``), keeping ``+incompatible``.

    Returns "" when ``v`` is not a semantic version, like module.CanonicalVersion.
    """
    p = _parse(v)
    if p is None:
        return ""
    keep = INCOMPATIBLE if p.build == INCOMPATIBLE else ""
    return f"v{p.major}.{p.minor}.{p.patch}{p.pre}{keep}"


def is_canonical(v: str) -> bool:
    """Report whether ``v`` is already canonical: what .mod and .zip requests must carry."""
    return v != "" and canonical(v) == v


def major(v: str) -> str:
    """Return ``vN`` for a valid version, else ""."""
    p = _parse(v)
    return "" if p is None else f"v{p.major}"


def is_pseudo(v: str) -> bool:
    """Report whether ``v`` is a pseudo-version (module.IsPseudoVersion)."""
    return v.count("-") >= 2 and is_valid(v) and _PSEUDO_RE.match(v) is not None
