"""Where the policy data lives in the policies directory, and data files found elsewhere.

OPA puts every data file it loads from a directory at the path of that directory
(v1/loader/loader.go ``allRec``), for ``opa run``, ``opa test`` and ``opa eval``:
``policies/modgate/config/data.json`` becomes ``data.modgate.config``, the only policy
data the rules read (``policies/modgate/policy_data.rego`` checks it). A data file anywhere
else lands where no rule looks. It changes no decision, but what its author meant to
enforce is silently not enforced, so ``modgate policy check`` reports it and ``modgate
serve`` refuses to start on it.

    >>> stray_data_files(Path("policies"))
    [PosixPath('data.json')]
"""

import os
from pathlib import Path, PurePath

CONFIG_DIR = PurePath("modgate", "config")
"""The directory, relative to the policies directory, that holds the policy data."""

DATA_SUFFIXES = (".json", ".yaml", ".yml")
"""What OPA's loader reads as data (v1/loader/loader.go ``loadKnownTypes``)."""


def stray_data_files(policies_dir: Path) -> list[Path]:
    """Data files under ``policies_dir`` but outside ``modgate/config/``, relative, sorted.

    Symbolic links are followed, as OPA follows them. Files inside ``modgate/config/``,
    at any depth, are the policy's business: the Rego refuses unknown keys there.
    """
    stray: list[Path] = []
    for directory, _dirs, files in os.walk(policies_dir, followlinks=True):
        relative = Path(directory).relative_to(policies_dir)
        if relative == CONFIG_DIR or CONFIG_DIR in relative.parents:
            continue
        stray.extend(relative / name for name in files if name.endswith(DATA_SUFFIXES))
    return sorted(stray)
