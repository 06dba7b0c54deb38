"""PolicyBundle: the policies directory as one OPA bundle, named by the hash of its content.

The revision a decision carries must say which policy made it without anyone bumping a
number by hand. It is computed here from exactly what OPA is given: the Rego files (not
the ``*_test.rego`` unit tests, which OPA does not serve) and the data files (``.json``,
``.yaml``, ``.yml``, as OPA's directory loader reads them), each at its path relative to the
policies directory. Names beginning with a dot (an editor's
swap file, ``.git``) are left out, as are files of any other kind.

The revision is ``sha256:`` and the hex SHA-256 of this encoding, file by file in the byte
order of their relative POSIX paths:

    len(path) as 8 bytes big-endian, path in UTF-8, len(content) as 8 bytes, content

so a file's name, place and every byte count, while timestamps, permissions and owners do
not: the same files give the same revision on every machine. ``tarball()`` is the bundle
OPA's bundle plugin downloads: a gzipped tar of the files and a ``.manifest`` holding the
revision and the bundle's root, itself deterministic (no timestamps, no owners). A bundle
reads data only from files named ``data.json``, ``data.yaml`` or ``data.yml``
(v1/bundle/bundle.go), so a directory with another data file name has no tarball: it is
refused rather than served without that data.

    >>> bundle = read_bundle(Path("policies"))
    >>> bundle.revision
    'sha256:3f1c...'
"""

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .layout import DATA_SUFFIXES

BUNDLE_ROOT = "modgate"
"""The one root the bundle owns (``data.modgate``): every bundled package lives under it."""

BUNDLE_DATA_NAMES = frozenset({"data.json", "data.yaml", "data.yml"})
REVISION_PREFIX = "sha256:"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
"""A policies directory larger than this is refused: it is not a policy, it is a mistake."""


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    files: tuple[tuple[str, bytes], ...]
    """(relative POSIX path, content), sorted by path."""
    revision: str

    @property
    def manifest(self) -> dict[str, object]:
        return {"revision": self.revision, "roots": [BUNDLE_ROOT]}

    def tarball(self) -> bytes:
        """The gzipped tar OPA downloads; the same files always give the same bytes.
        ConfigError when a data file has a name a bundle does not read."""
        for name, _ in self.files:
            if name.endswith(DATA_SUFFIXES) and name.rpartition("/")[2] not in BUNDLE_DATA_NAMES:
                raise ConfigError(
                    f"policy data file {name}: an OPA bundle reads data only from files named "
                    f"{', '.join(sorted(BUNDLE_DATA_NAMES))}; move its content into one"
                )
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            manifest = json.dumps(self.manifest, sort_keys=True).encode()
            for name, content in ((".manifest", manifest), *self.files):
                info = tarfile.TarInfo("/" + name)
                info.size, info.mode, info.mtime = len(content), 0o644, 0
                tar.addfile(info, io.BytesIO(content))
        return gzip.compress(raw.getvalue(), mtime=0)


def bundled_file(relative: Path) -> bool:
    """Whether a file at ``relative`` (to the policies directory) belongs in the bundle."""
    if any(part.startswith(".") for part in relative.parts):
        return False
    name = relative.name
    if name.endswith(".rego"):
        return not name.endswith("_test.rego")
    return name.endswith(DATA_SUFFIXES)


def content_revision(files: tuple[tuple[str, bytes], ...]) -> str:
    digest = hashlib.sha256()
    for name, content in files:
        encoded = name.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(content).to_bytes(8, "big") + content)
    return REVISION_PREFIX + digest.hexdigest()


def read_bundle(policies_dir: Path) -> PolicyBundle:
    """The bundle of ``policies_dir`` as it is now; ConfigError when it cannot be read.

    Symbolic links are followed, as OPA follows them."""
    if not policies_dir.is_dir():
        raise ConfigError(f"cannot read the policies in {policies_dir}: no such directory")
    found: list[tuple[str, bytes]] = []
    total = 0
    try:
        for directory, dirs, names in os.walk(policies_dir, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                path = Path(directory, name)
                relative = path.relative_to(policies_dir)
                if not bundled_file(relative):
                    continue
                content = path.read_bytes()
                total += len(content)
                if total > MAX_BUNDLE_BYTES:
                    raise ConfigError(f"policies in {policies_dir} exceed {MAX_BUNDLE_BYTES} bytes")
                found.append((relative.as_posix(), content))
    except OSError as exc:
        raise ConfigError(f"cannot read the policies in {policies_dir}: {exc}") from exc
    if not any(name.endswith(".rego") for name, _ in found):
        raise ConfigError(f"no Rego policy (.rego) in {policies_dir}")
    files = tuple(sorted(found, key=lambda item: item[0].encode()))
    return PolicyBundle(files, content_revision(files))
