"""Presets for CI systems' OIDC id_tokens: a ``[[jwt.issuers]]`` table with ``preset = "github"``
or ``"gitlab"`` needs only its ``audience`` (and ``issuer`` for GitHub Enterprise Server or a
self-managed GitLab); every key the table sets itself overrides the preset.

The subject is the repository (``ci:github:<org>/<repo>``, ``ci:gitlab:<group>/<project>``),
and the details name the pipeline under the same keys for both systems, so one Rego rule
and one audit query serve both: ``provider``, ``repository``, ``repository_id``, ``ref``,
``ref_type``, ``sha``, ``workflow``, ``job``, ``run_id``, ``event``, ``actor``,
``environment``, ``runner_environment`` (and ``ref_protected`` from GitLab, ``run_attempt``
from GitHub). Claims a token lacks are left out, never invented.

Claim names: GitHub's "OpenID Connect reference" (claims_supported of
``<issuer>/.well-known/openid-configuration``); GitLab's "OpenID Connect (OIDC)
Authentication Using ID Tokens" (``id_tokens`` in .gitlab-ci.yml).
"""

import dataclasses
from collections.abc import Mapping, Set
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # settings.py imports this module: no cycle at run time
    from ..settings import JwtIssuerSettings

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"

KEY_SOURCES = frozenset({"jwks_url", "jwks_file", "discovery", "shared_secret_file"})

PRESETS: Mapping[str, Mapping[str, Any]] = {
    "github": {
        "name": "github",
        "issuer": GITHUB_ISSUER,
        "discovery": True,
        "algorithms": ("RS256",),
        "subject_claim": "repository",
        "subject_prefix": "ci:github:",
        "groups": ("ci",),
        "detail_claims": (
            "repository",
            "repository_id",
            "repository_owner",
            "ref",
            "ref_type",
            "sha",
            "workflow=workflow_ref",
            "job=job_workflow_ref",
            "run_id",
            "run_attempt",
            "event=event_name",
            "actor",
            "environment",
            "runner_environment",
        ),
    },
    "gitlab": {
        "name": "gitlab",
        "issuer": GITLAB_ISSUER,
        "discovery": True,
        "algorithms": ("RS256",),
        "subject_claim": "project_path",
        "subject_prefix": "ci:gitlab:",
        "groups": ("ci",),
        "detail_claims": (
            "repository=project_path",
            "repository_id=project_id",
            "namespace=namespace_path",
            "ref",
            "ref_type",
            "ref_protected",
            "sha",
            "workflow=ci_config_ref_uri",
            "job=job_id",
            "run_id=pipeline_id",
            "event=pipeline_source",
            "actor=user_login",
            "environment",
            "runner_environment",
        ),
    },
}


def apply_preset(
    issuer: "JwtIssuerSettings", explicit: Set[str], where: str
) -> "JwtIssuerSettings":
    """``issuer`` with its preset's values for every key not in ``explicit`` (the keys
    its table set); unchanged without a preset. ValueError for an unknown preset."""
    if not issuer.preset:
        return issuer
    preset = PRESETS.get(issuer.preset)
    if preset is None:
        raise ValueError(f"{where}.preset {issuer.preset!r} is not one of {', '.join(PRESETS)}")
    values = {key: value for key, value in preset.items() if key not in explicit}
    if explicit & KEY_SOURCES:  # a table naming its own key set (a JWKS mirror) replaces discovery
        values.pop("discovery", None)
    if "shared_secret_file" in explicit:  # HS256, not the preset's RS256
        values.pop("algorithms", None)
    return dataclasses.replace(issuer, **values)
