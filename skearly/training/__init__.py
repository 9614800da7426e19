"""Fit side: joint fine-tuning of every exit head, then temperature calibration, as one cached pure function.

- :func:`fit_network` fine-tunes a :class:`~skearly.network.MultiExitNetwork` under a
  training objective (:mod:`skearly.objectives`) and calibrates its heads
  (:mod:`skearly.calibration`); :func:`cached_fit_network` runs it through ``memory=``.
- The training loop itself is private (``_loop``); the fit cache is ``_fit_cache``;
  :func:`warn_if_learned_nothing` (``_learning``) tells a fit that learned nothing.
"""

from skearly.training._fit_cache import (
    RECENT_FITS,
    FitParams,
    FitResult,
    RecentFits,
    cached_fit_network,
    encoder_identity,
    fit_network,
    load_encoder_files,
    resolve_memory,
)
from skearly.training._learning import learned_nothing, warn_if_learned_nothing

__all__ = [
    "FitParams",
    "FitResult",
    "fit_network",
    "cached_fit_network",
    "encoder_identity",
    "load_encoder_files",
    "resolve_memory",
    "RecentFits",
    "RECENT_FITS",
    "learned_nothing",
    "warn_if_learned_nothing",
]
