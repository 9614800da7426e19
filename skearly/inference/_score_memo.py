"""In-process memo of every exit head's calibrated probabilities on inputs already scored.

A threshold search (``GridSearchCV`` over ``threshold``, ``target_speedup`` or
``exit_criterion`` with ``memory=``) scores every candidate on the same
validation fold with the same fine-tuned network: the candidates differ only
in the exit rule. :meth:`EarlyExitTextClassifier.score` then runs the fold
through every layer once (:meth:`skearly.inference.InferenceEngine.head_proba`),
keeps every head's calibrated probabilities here, and replays each candidate's
rule on them (:func:`skearly.inference.simulate_exits`), the way scikit-learn's
multi-metric scoring reuses one ``predict`` for several scorers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import joblib
import numpy as np

from skearly._utils.lru import BoundedLRU

__all__ = ["RECENT_HEAD_PROBA", "head_proba_key"]

#: Head probabilities by :func:`head_proba_key` (64 entries, 256 MiB at most).
RECENT_HEAD_PROBA = BoundedLRU(max_entries=64, max_bytes=256 * 2**20)


def head_proba_key(fit_key: str, first: Sequence[str], second: Sequence[str] | None, settings: Any) -> str:
    """The memo key of the head probabilities of ``(first, second)`` under one fitted network.

    ``fit_key`` is the fit cache's key of the network (the same key always gives
    the same network); ``settings`` holds every predict-time setting that changes
    the probabilities (backend, device type, ``max_length``, mixed precision),
    never the exit rule.
    """
    texts = np.asarray(list(first), dtype=object), None if second is None else np.asarray(list(second), dtype=object)
    return joblib.hash((fit_key, texts, settings))
