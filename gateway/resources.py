"""Where the files modgate ships beside its code are: the bundled policies and migrations.

They live at the top of the source tree (``policies/``, ``migrations/``), where developers
and users of a checkout edit them. A built package carries copies inside ``gateway/``
(``_bundled/``, mapped in ``setup.py``), so an installed modgate needs no checkout: the
copy is used when it is there, else the source tree's.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_INSTALLED = _PACKAGE / "_bundled"
_SOURCE_TREE = _PACKAGE.parent


def _shipped(name: str) -> Path:
    installed = _INSTALLED / name
    return installed if installed.is_dir() else _SOURCE_TREE / name


def bundled_policies_dir() -> Path:
    """The Rego and data modgate ships: what ``policy.policies_dir = ""`` serves."""
    return _shipped("policies")


def migrations_dir() -> Path:
    """The Alembic scripts of the audit database."""
    return _shipped("migrations")


def policies_dir(configured: str) -> Path:
    """``policy.policies_dir``: the configured directory, or the bundled policies."""
    return Path(configured) if configured else bundled_policies_dir()
