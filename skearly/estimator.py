"""The scikit-learn face of skearly: :class:`EarlyExitTextClassifier`."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._batching import Encoded, tokenize
from ._validation import check_number, check_targets, check_texts, check_threshold
from .calibration import calibrated_proba, expected_calibration_error, fit_temperature, negative_log_likelihood
from .encoders import resolve_encoder
from .exit_criteria import ExitCriterion, resolve_criterion
from .inference import early_exit_proba
from .network import POOLINGS, MultiExitNetwork
from .training import TrainingConfig, all_exit_logits, train_jointly

__all__ = ["EarlyExitTextClassifier"]

logger = logging.getLogger(__name__)

_PERSISTENCE_VERSION = 1
_PREDICT_CHUNK = 8192  # rows tokenized at once in predict: bounds memory on big inputs


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
        The pretrained encoder: ``None`` for the packaged all-MiniLM-L6-v2
        (6 layers, installed with skearly), a local Hugging Face model folder,
        or a model name already in the local Hugging Face cache. Nothing is
        downloaded. Must be a BERT-style encoder (BERT, RoBERTa, ELECTRA, MiniLM ...).
    threshold : float, default=0.9
        Calibrated confidence a row needs to exit early, in (0, 1]. ``1.0``
        never exits early (full depth). Predict-time only: change it freely after ``fit``.
    head_layers : sequence of int or None, default=None
        1-based encoder layers that carry an exit head; ``None`` means every
        layer. The last one is the final classifier; layers after it are dropped.
    exit_criterion : {"max_proba", "entropy", "patience"} or ExitCriterion, default="max_proba"
        The exit rule (see :mod:`skearly.exit_criteria`): the paper's calibrated
        top-class probability, DeeBERT's normalised entropy, or PABEE's patience
        (two agreeing heads). Predict-time only.
    max_length : int, default=128
        Maximum tokens per text (or pair); longer inputs are truncated.
    batch_size : int, default=32
        Rows per training step.
    predict_batch_size : int, default=64
        Rows per inference batch (rows are grouped by length). Predict-time only.
    epochs : int, default=2
        Passes over the training data.
    learning_rate : float, default=5e-5
        Peak AdamW learning rate.
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
        Use bf16/fp16 autocast when running on CUDA (ignored on CPU).
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where to fit and predict; ``"auto"`` takes CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split, the head initialisation, dropout and batch
        order. Two fits with the same integer give identical models on one machine.
    verbose : int, default=0
        ``> 0`` shows progress bars for fine-tuning and prediction.

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
    loss_curve_ : list of float
        Mean summed training loss of each epoch.
    fit_time_ : float
        Seconds spent in ``fit``.
    network_ : MultiExitNetwork
        The fine-tuned torch network.
    tokenizer_ : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    exit_layers_ : ndarray of shape (n_samples,)
        1-based encoder layer at which each row of the **last** ``predict``,
        ``predict_proba`` or ``score`` call exited. Shared by all threads using
        this estimator: use :meth:`predict_with_exits` for a race-free answer.

    See Also
    --------
    skearly.exit_criteria : the exit rules.
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
        head_layers: tuple[int, ...] | list[int] | None = None,
        exit_criterion: str | ExitCriterion = "max_proba",
        max_length: int = 128,
        batch_size: int = 32,
        predict_batch_size: int = 64,
        epochs: int = 2,
        learning_rate: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        calibration_size: float = 0.1,
        pooling: str = "mean",
        dropout: float = 0.1,
        mixed_precision: bool = True,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self.head_layers = head_layers
        self.exit_criterion = exit_criterion
        self.max_length = max_length
        self.batch_size = batch_size
        self.predict_batch_size = predict_batch_size
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.calibration_size = calibration_size
        self.pooling = pooling
        self.dropout = dropout
        self.mixed_precision = mixed_precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------ validation
    def _check_fit_params(self) -> None:
        check_threshold(self.threshold)
        resolve_criterion(self.exit_criterion)
        check_number("max_length", self.max_length, kind=int, low=2)
        check_number("batch_size", self.batch_size, kind=int, low=1)
        self._check_predict_batch_size()
        check_number("epochs", self.epochs, kind=int, low=0)
        check_number("learning_rate", self.learning_rate, kind=float, low=0, low_open=True)
        check_number("weight_decay", self.weight_decay, kind=float, low=0)
        check_number("warmup_ratio", self.warmup_ratio, kind=float, low=0, high=1)
        check_number("calibration_size", self.calibration_size, kind=float, low=0, high=1, high_open=True)
        check_number("dropout", self.dropout, kind=float, low=0, high=1, high_open=True)
        check_number("verbose", self.verbose, kind=int, low=0)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}.")
        if not isinstance(self.mixed_precision, (bool, np.bool_)):
            raise TypeError(f"mixed_precision must be a bool, got {self.mixed_precision!r}.")

    def _check_predict_batch_size(self) -> None:
        check_number("predict_batch_size", self.predict_batch_size, kind=int, low=1)

    def _resolve_head_layers(self, n_layers: int) -> tuple[int, ...]:
        if self.head_layers is None:
            return tuple(range(1, n_layers + 1))
        if isinstance(self.head_layers, (str, bytes)) or not hasattr(self.head_layers, "__iter__"):
            raise TypeError(f"head_layers must be a sequence of layer numbers or None, got {self.head_layers!r}.")
        layers = list(self.head_layers)
        if not layers or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in layers):
            raise ValueError(f"head_layers must be a non-empty sequence of ints, got {self.head_layers!r}.")
        if any(v < 1 or v > n_layers for v in layers) or sorted(set(layers)) != layers:
            raise ValueError(
                f"head_layers must be strictly increasing layer numbers in 1..{n_layers} "
                f"(this encoder has {n_layers} layers), got {self.head_layers!r}."
            )
        return tuple(int(v) for v in layers)

    def _resolve_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch device, got {self.device!r}.") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was requested but CUDA is not available on this machine.")
        return device

    # ------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any) -> EarlyExitTextClassifier:
        """Fine-tune the encoder and all exit heads jointly, then calibrate each head.

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
        """
        start = time.perf_counter()
        self._check_fit_params()
        first, second = check_texts(X)
        y = check_targets(y, len(first))
        check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has only one class ({classes[0]!r}): a classifier needs at least 2 classes.")
        device = self._resolve_device()
        path = resolve_encoder(self.encoder)
        tokenizer, config = self._load_encoder_files(path)
        n_layers = int(config.num_hidden_layers)
        head_layers = self._resolve_head_layers(n_layers)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        train_rows, calib_rows = self._calibration_split(y_index, seed)

        encoded = tokenize(tokenizer, first, second, self.max_length)
        mixed = bool(self.mixed_precision)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            network = MultiExitNetwork.from_pretrained(
                path, exit_layers=head_layers, n_classes=len(classes), dropout=self.dropout, pooling=self.pooling
            ).to(device)
            history = train_jointly(
                network,
                _subset(encoded, train_rows),
                y_index[train_rows],
                TrainingConfig(
                    self.epochs, self.batch_size, self.learning_rate, self.weight_decay, self.warmup_ratio, self.verbose
                ),
                rng=np.random.default_rng(seed),
                device=device,
                mixed_precision=mixed,
            )
        calib_logits = all_exit_logits(network, _subset(encoded, calib_rows), self.predict_batch_size, device, mixed)
        self.temperatures_, self.calibration_report_ = _calibrate(calib_logits, y_index[calib_rows], head_layers)

        self.classes_ = classes
        self.n_layers_ = n_layers
        self.head_layers_ = head_layers
        self.network_ = network
        self.tokenizer_ = tokenizer
        self.loss_curve_ = history
        self.fit_time_ = time.perf_counter() - start
        logger.info("fitted in %.1fs; temperatures %s", self.fit_time_, np.round(self.temperatures_, 3))
        return self

    @staticmethod
    def _load_encoder_files(path: str):
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            config = MultiExitNetwork.load_config(path)
        except OSError as exc:
            raise ValueError(
                f"encoder {path!r} was not found locally. skearly never downloads models: pass a local model "
                "folder, or None for the packaged default encoder."
            ) from exc
        return tokenizer, config

    def _calibration_split(self, y_index: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(y_index))
        if self.calibration_size == 0:
            return rows, rows[:0]
        n_classes = int(y_index.max()) + 1
        n_calib = int(np.ceil(self.calibration_size * len(rows)))
        if len(rows) - n_calib < n_classes or n_calib < 1:
            raise ValueError(
                f"Too few samples ({len(rows)}) to hold out calibration_size={self.calibration_size} for "
                "calibration and still train on every class; pass more data or calibration_size=0."
            )
        try:
            train, calib = train_test_split(rows, test_size=n_calib, stratify=y_index, random_state=seed)
        except ValueError:
            warnings.warn(
                "Some class is too rare for a stratified calibration split; using a random split.",
                UserWarning,
                stacklevel=3,
            )
            train, calib = train_test_split(rows, test_size=n_calib, random_state=seed)
        return np.sort(train), np.sort(calib)

    # --------------------------------------------------------------- predict
    def _encode(self, X: Any) -> Encoded:
        first, second = check_texts(X)
        return tokenize(self.tokenizer_, first, second, self.max_length)

    def _encoded_chunks(self, first: list[str], second: list[str] | None) -> Iterator[tuple[slice, Encoded]]:
        """Tokenize validated texts chunk by chunk, so memory stays bounded on big inputs."""
        for start in range(0, len(first), _PREDICT_CHUNK):
            rows = slice(start, start + _PREDICT_CHUNK)
            yield (
                rows,
                tokenize(self.tokenizer_, first[rows], None if second is None else second[rows], self.max_length),
            )

    def _predict_proba_exits(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "network_")
        threshold = check_threshold(self.threshold)
        criterion = resolve_criterion(self.exit_criterion)
        self._check_predict_batch_size()
        device = self._resolve_device()
        network = self.network_.to(device)
        first, second = check_texts(X)
        n_rows = len(first)
        proba = np.empty((n_rows, len(self.classes_)), dtype=np.float64)
        layers = np.empty(n_rows, dtype=np.int64)
        for rows, encoded in self._encoded_chunks(first, second):
            proba[rows], layers[rows] = early_exit_proba(
                network,
                encoded,
                self.temperatures_,
                criterion,
                threshold,
                batch_size=self.predict_batch_size,
                device=device,
                mixed_precision=bool(self.mixed_precision),
                verbose=self.verbose,
            )
        return proba, layers

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities from each row's exit head.

        Sets :attr:`exit_layers_`.

        Parameters
        ----------
        X : sequence of str or of (str, str) pairs, array, Series or DataFrame
            Texts (or pairs) to classify.

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
            Texts (or pairs) to classify.

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
            Texts (or pairs) to classify.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from :attr:`classes_`.
        exit_layers : ndarray of shape (n_samples,)
            1-based encoder layer at which each row exited.
        """
        proba, layers = self._predict_proba_exits(X)
        return self.classes_[proba.argmax(axis=1)], layers

    # ----------------------------------------------------------- persistence
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: never strip the live estimator
        network = state.pop("network_", None)
        if network is not None:
            state["_network_snapshot"] = {
                "version": _PERSISTENCE_VERSION,
                "config": network.config,
                "exit_layers": network.exit_layers,
                "n_classes": network.heads[0].out.out_features,
                "pooling": network.heads[0].pooling,
                "dropout": network.heads[0].dropout.p,
                "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()},
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        snapshot = state.pop("_network_snapshot", None)
        super().__setstate__(state)
        if snapshot is not None:
            if snapshot.get("version") != _PERSISTENCE_VERSION:
                raise ValueError(
                    f"This model file has format version {snapshot.get('version')!r}; this skearly reads "
                    f"version {_PERSISTENCE_VERSION}."
                )
            network = MultiExitNetwork.from_config(
                snapshot["config"],
                exit_layers=snapshot["exit_layers"],
                n_classes=snapshot["n_classes"],
                pooling=snapshot["pooling"],
                dropout=snapshot["dropout"],
            )
            network.load_state_dict(snapshot["state_dict"])
            self.network_ = network.eval()


def _subset(encoded: Encoded, rows: np.ndarray) -> Encoded:
    types = None if encoded.token_type_ids is None else [encoded.token_type_ids[i] for i in rows]
    return Encoded([encoded.input_ids[i] for i in rows], types, encoded.pad_token_id)


def _calibrate(logits: np.ndarray, y: np.ndarray, head_layers: tuple[int, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    """Fit one temperature per head on held-out logits and report accuracy, ECE and NLL before/after."""
    temperatures, records = [], []
    for layer, head_logits in zip(head_layers, logits, strict=True):
        t = fit_temperature(head_logits, y)
        temperatures.append(t)
        if len(y):
            raw, scaled = calibrated_proba(head_logits, 1.0), calibrated_proba(head_logits, t)
            metrics = {
                "accuracy": float((raw.argmax(1) == y).mean()),
                "ece_before": expected_calibration_error(raw, y),
                "ece_after": expected_calibration_error(scaled, y),
                "nll_before": negative_log_likelihood(head_logits, y),
                "nll_after": negative_log_likelihood(head_logits, y, t),
            }
        else:
            metrics = dict.fromkeys(("accuracy", "ece_before", "ece_after", "nll_before", "nll_after"), np.nan)
        records.append({"layer": layer, "temperature": t, **metrics})
    return np.asarray(temperatures), pd.DataFrame.from_records(records)
