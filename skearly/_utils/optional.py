"""Import of optional dependencies, with an error that names the skearly extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise an ``ImportError`` saying which skearly extra installs it.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"pyspark.sql"``.
    extra : str
        The skearly extra that installs it, e.g. ``"spark"``.
    purpose : str
        What needs it, for the message, e.g. ``"skearly.integrations.spark.predict_spark"``.

    Returns
    -------
    module
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(
            f"{purpose} needs {package}, which is not installed (or failed to import: {exc}). "
            f"Install it with: pip install 'skearly[{extra}]'"
        ) from exc
