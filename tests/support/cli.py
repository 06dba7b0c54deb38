"""Run the real `modgate` command as a user would, with the project's OPA."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.opa import find_opa

REPO = Path(__file__).resolve().parents[2]


def run_modgate(
    *args: str,
    policies: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
) -> subprocess.CompletedProcess[str]:
    """`modgate ARGS...` with the project's OPA and, if given, another policies directory;
    its exit status and output, never raised."""
    full_env = {**os.environ, "MODGATE_POLICY_OPA_BINARY": str(find_opa()), **(env or {})}
    if policies is not None:
        full_env["MODGATE_POLICY_POLICIES_DIR"] = str(policies)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
