"""Package data that lives outside ``gateway/``: everything else is in pyproject.toml.

The policies and the migrations stay at the top of the source tree, where they are edited
(and where alembic.ini and `make policy-test` look); a built package carries them inside
``gateway/_bundled/``, where gateway/resources.py finds them in an installed modgate.
"""

from setuptools import find_namespace_packages, find_packages, setup


def tree(package: str, directory: str) -> dict[str, str]:
    """``package`` and one package per subdirectory of ``directory``, mapped onto it."""
    subdirectories = find_namespace_packages(where=directory, exclude=["*__pycache__*"])
    return {
        package: directory,
        **{f"{package}.{sub}": f"{directory}/{sub.replace('.', '/')}" for sub in subdirectories},
    }


POLICIES = tree("gateway._bundled.policies", "policies")
MIGRATIONS = tree("gateway._bundled.migrations", "migrations")  # its .py files are modules

setup(
    packages=[*find_packages(include=["gateway", "gateway.*"]), *POLICIES, *MIGRATIONS],
    package_dir={**POLICIES, **MIGRATIONS},
    package_data={
        **{package: ["*.rego", "*.json"] for package in POLICIES},
        "gateway._bundled.migrations": ["script.py.mako"],
    },
)
