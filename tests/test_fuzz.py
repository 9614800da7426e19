"""Hypothesis fuzzing of fit / predict / predict_proba / score with hostile inputs, and of the other surfaces.

Every generated input must give either a result of the right shape, or a
``ValueError`` / ``TypeError`` whose message names the bad row (``X[3]``) or the
bad argument (``X``, ``y``, ``threshold`` ...). Any other exception fails.
Beyond fit and predict: the input kind a model was fitted on (texts or pairs),
strategy parameters, exit-curve tables, the threshold search, Spark's column
arguments and edits of a saved model's fitted state.

About 3,000 inputs in total by default; ``pytest --fuzz-long`` runs 5x more (the fit fuzz, where
every example fine-tunes a model, 2x), about 13,700 in all.
"""

from __future__ import annotations

import collections
import copy
import fractions
import math
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, get_scorer

from skearly import EarlyExitTextClassifier
from skearly.encoders import make_tiny_encoder
from skearly.exit_criteria import Patience
from skearly.exit_curve import ExitCurveDisplay
from skearly.model_selection import EarlyExitThresholdCV
from skearly.objectives import LayerWeighted, SelfDistillation

pytestmark = pytest.mark.fuzz

# examples per test at scale 1: 3,040 in total (``--fuzz-long`` multiplies by 5, the fit fuzz by 2: 13,700)
FIT_LONG_SCALE = 2
N_PREDICT, N_PAIRS, N_SCORE, N_THRESHOLD, N_FIT = 700, 400, 300, 200, 500
N_KIND, N_STRATEGY, N_CURVE, N_SEARCH, N_SPARK, N_STATE = 150, 300, 200, 40, 200, 50

OUTCOMES: collections.Counter = collections.Counter()


def fuzz_settings(n: int, scale: int):
    return settings(
        max_examples=n * scale,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# ------------------------------------------------------------------------------ texts
SPECIAL_TEXTS = [
    "",
    " ",
    "\t\n \r\n",
    "\u200b\u200e\u200f\ufeff",  # zero-width and direction marks
    "😀👍🏽🇫🇷👨‍👩‍👧",  # emoji with skin tone, flag, ZWJ family
    "مرحبا بالعالم",  # Arabic (RTL)
    "שלום עולם",  # Hebrew (RTL)
    "e\u0301\u0302\u0303\u0304",  # stacked combining marks
    "Z\u0351\u0352\u0357\u035b\u0346",  # "zalgo"
    "a\x00b\x07c",  # control characters
    "日本語のテキスト",
    "good " * 400,  # far longer than max_length: truncated
    "x" * 5000,  # one giant "word"
    "🙂" * 700,
]


def is_valid_text(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


good_text = st.one_of(
    st.sampled_from(SPECIAL_TEXTS),
    st.text(max_size=40),
    st.text(st.characters(categories=["M", "Cf", "Zs", "So", "Lo"]), max_size=20),
    st.integers(100, 1500).map(lambda n: " ".join(["great"] * n)),
)

bad_item = st.one_of(
    st.none(),
    st.sampled_from([float("nan"), np.nan, np.float32("nan"), pd.NA, pd.NaT]),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.binary(max_size=12),
    st.lists(good_text, max_size=3),  # nested list
    st.tuples(good_text, good_text, good_text),  # 3-tuple
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["\ud800", "ok \udcff", "\udfff end"]),  # lone surrogates: not valid Unicode
    st.integers(-5, 5).map(np.int64),
    st.just(object()),
)

X_NAMES = re.compile(r"\bX\b|X\[\d+\]")


def n_rows(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def as_container(items: list, kind: str):
    """The same rows as a list, tuple, 1-D object array, Series, or 1-column DataFrame."""
    if kind == "list":
        return list(items)
    if kind == "tuple":
        return tuple(items)
    array = np.empty(len(items), dtype=object)
    for i, value in enumerate(items):
        array[i] = value
    if kind == "array":
        return array
    if kind == "series":
        return pd.Series(array, dtype=object)
    return pd.DataFrame({"text": array})


@st.composite
def single_texts(draw, hostile: bool = True, min_size: int = 1):
    """1-D text inputs, valid or (when ``hostile``) with bad items mixed in: (X, must_succeed)."""
    mixed = hostile and draw(st.booleans())
    items = draw(
        st.lists(
            st.one_of(good_text, bad_item) if mixed else good_text, min_size=0 if hostile else min_size, max_size=8
        )
    )
    kind = draw(st.sampled_from(["list", "tuple", "array", "series", "frame"]))
    ok = len(items) > 0 and all(is_valid_text(v) for v in items)
    if kind == "frame" and not ok:
        kind = "list"  # a DataFrame of tuples is a separate story
    return as_container(items, kind), ok


@st.composite
def text_pairs(draw, hostile: bool = True, min_size: int = 1):
    """Pair inputs, with (when ``hostile``) ragged rows, 3-tuples and single texts mixed in: (X, must_succeed)."""
    pair = st.tuples(good_text, good_text)
    ragged = hostile and draw(st.booleans())
    row = st.one_of(pair, st.tuples(good_text), st.tuples(good_text, good_text, good_text), good_text, bad_item)
    rows = draw(st.lists(row if ragged else pair, min_size=min_size, max_size=6))
    ok = all(isinstance(r, tuple) and len(r) == 2 and all(is_valid_text(t) for t in r) for r in rows)
    kind = draw(st.sampled_from(["tuples", "lists", "array", "frame"]))
    if not ok or kind == "tuples":
        return rows, ok
    if kind == "lists":
        return [list(r) for r in rows], ok
    array = np.empty((len(rows), 2), dtype=object)
    for i, (a, b) in enumerate(rows):
        array[i] = (a, b)
    return (array if kind == "array" else pd.DataFrame(array, columns=["a", "b"])), ok


def _generator():
    yield "a text"


odd_inputs = st.sampled_from(
    [
        None,
        "a single string",
        b"bytes",
        42,
        3.5,
        {"a": 1},
        {"a text", "another"},
        iter(["a", "b"]),
        _generator(),
        range(3),
        np.array("zero-d"),
        np.empty((0,), dtype=object),
        np.full((3, 3), "text", dtype=object),
        np.full((2, 4), "text"),
        np.full((2, 2, 2), "text"),
        np.zeros((3, 0)),
        np.zeros((4, 2)),
        pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]}),
        pd.DataFrame(),
        scipy.sparse.csr_matrix(np.eye(3)),
        [],
        [[]],
        [()],
        [["a", ["nested"]]],
        [[["deep"], "x"]],
        object(),
    ]
).map(lambda X: (X, False))

any_X = st.one_of(single_texts(), single_texts(), text_pairs(), odd_inputs)


def is_pairs(X) -> bool:
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and isinstance(X[0], (tuple, list))
    return getattr(X, "ndim", 0) == 2 and X.shape[1] == 2


def check_rows_named(message: str, X) -> None:
    """Row indices named in the message must exist."""
    try:
        n = n_rows(X)
    except (TypeError, IndexError):
        return
    for index in re.findall(r"X\[(\d+)\]", message):
        assert int(index) < n, message


def outcome(test: str, call, must_succeed: bool, names: re.Pattern, X=None):
    """Run ``call``: return its result, or None after checking a ValueError/TypeError names the problem."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert not must_succeed, f"valid input rejected with {type(exc).__name__}: {message}"
        assert names.search(message), f"{type(exc).__name__} does not name the problem: {message}"
        if X is not None:
            check_rows_named(message, X)
        OUTCOMES[test, type(exc).__name__] += 1
        return None
    OUTCOMES[test, "ok"] += 1
    return result


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def model(fitted):
    """A private copy of the session's fitted tiny model (predict sets attributes)."""
    return copy.deepcopy(fitted).set_params(threshold=0.8)


@pytest.fixture(scope="module")
def micro_encoder(tmp_path_factory) -> str:
    """A 2-layer, 8-wide encoder: a fit takes a few tens of milliseconds."""
    return str(make_tiny_encoder(tmp_path_factory.mktemp("micro-encoder"), n_layers=2, hidden_size=8, n_heads=2))


@pytest.fixture(scope="module")
def pair_model(micro_encoder):
    """A micro model fitted on text pairs (without column names), for inputs that are pairs."""
    X = [(f"premise {i} good", f"hypothesis {i % 3}") for i in range(8)]
    return EarlyExitTextClassifier(micro_encoder, epochs=1, calibration_size=0, random_state=0).fit(X, [0, 1] * 4)


def for_kind(X, model, pair_model):
    """The model fitted on X's kind: pairs go to ``pair_model``, anything else to ``model``."""
    return pair_model if is_pairs(X) else model


@pytest.fixture(scope="module", autouse=True)
def report_outcomes():
    """Print the outcome counts (visible with ``pytest -s``)."""
    OUTCOMES.clear()
    yield
    print(f"\nfuzz outcomes, {sum(OUTCOMES.values())} inputs in total:")
    for (test, kind), count in sorted(OUTCOMES.items()):
        print(f"  {test:<14} {kind:<10} {count}")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; several spin badly on a busy CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def check_proba(proba, n: int, n_classes: int) -> None:
    assert isinstance(proba, np.ndarray) and proba.shape == (n, n_classes)
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1.0)


# ------------------------------------------------------------------------------ predict
def test_fuzz_predict(model, pair_model, fuzz_scale):
    @fuzz_settings(N_PREDICT, fuzz_scale)
    @given(any_X)
    def run(case):
        X, ok = case
        clf = for_kind(X, model, pair_model)
        result = outcome("predict", lambda: clf.predict(X), ok, X_NAMES, X)
        if result is not None:
            n = n_rows(X)
            assert result.shape == (n,) and set(result) <= set(clf.classes_)
            assert clf.exit_layers_.shape == (n,)

    run()


def test_fuzz_predict_proba_and_exits(model, pair_model, fuzz_scale):
    @fuzz_settings(N_PAIRS, fuzz_scale)
    @given(st.one_of(text_pairs(), single_texts(), odd_inputs), st.booleans())
    def run(case, with_exits):
        X, ok = case
        clf = for_kind(X, model, pair_model)
        if with_exits:
            result = outcome("with_exits", lambda: clf.predict_with_exits(X), ok, X_NAMES, X)
            if result is not None:
                y_pred, layers = result
                assert y_pred.shape == layers.shape == (n_rows(X),)
                assert set(layers) <= set(clf.head_layers_)
        else:
            result = outcome("predict_proba", lambda: clf.predict_proba(X), ok, X_NAMES, X)
            if result is not None:
                check_proba(result, n_rows(X), len(clf.classes_))

    run()


def test_fuzz_input_kind(model, pair_model, fuzz_scale):
    """Valid texts and pairs: accepted by the model fitted on their kind, refused (ValueError) by the other."""

    @fuzz_settings(N_KIND, fuzz_scale)
    @given(st.one_of(single_texts(hostile=False), text_pairs(hostile=False)), st.booleans())
    def run(case, same_kind):
        X, _ = case
        fitted_on = for_kind(X, model, pair_model)
        clf = fitted_on if same_kind else (model if fitted_on is pair_model else pair_model)
        if same_kind:
            assert outcome("input_kind", lambda: clf.predict(X), True, X_NAMES, X).shape == (n_rows(X),)
            return
        with pytest.raises(ValueError, match=r"X holds .* but this model was fitted on"):
            clf.predict(X)
        OUTCOMES["input_kind", "ValueError"] += 1

    run()


# ------------------------------------------------------------------------------ labels
label_values = st.one_of(
    st.sampled_from([0, 1, 0, 1, np.int64(1), 1.0, 0.0, True]),  # seen at fit
    st.integers(-3, 9),  # mostly unseen at fit
    st.sampled_from(["a", "positive", ""]),
    st.sampled_from([None, float("nan"), np.nan, pd.NA, float("inf"), 0.5, 2.7]),
    st.sampled_from([1j, fractions.Fraction(1, 3), b"x", (0, 1), [1]]),
    st.integers(2**63, 2**70),
)


def valid_labels(values: list) -> bool:
    """Well-formed numeric labels: all bools, or integers / integral floats (no bool mixed in)."""
    if all(isinstance(v, bool) for v in values):
        return True
    return all(_valid_number(v) for v in values)


def _valid_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return abs(int(value)) < 2**63
    return isinstance(value, float) and math.isfinite(value) and value == round(value)


@st.composite
def labels_for(draw, n: int, kind: str, exact: bool = False):
    """y for n rows: (y, valid) where valid means well-formed labels, 1-D (or a column), of the right length."""
    if kind == "str":
        values = st.sampled_from(["neg", "pos", "neu", "pos"])
    elif kind == "int":
        values = st.sampled_from([0, 1, 2, 1, 0])
    else:
        values = label_values
    length = n if exact else draw(st.sampled_from([n, n, n, n, max(n - 1, 0), n + 1]))
    y = draw(st.lists(values, min_size=length, max_size=length))
    shape = draw(st.sampled_from(["list", "list", "array", "series", "column"] + ["matrix"] * (not exact)))
    valid = length == n and (kind == "str" or valid_labels(y))
    if shape == "array":
        y_out = np.array(y, dtype=object)
    elif shape == "series":
        y_out = pd.Series(y, dtype=object)
    elif shape == "column":
        y_out = np.array(y, dtype=object).reshape(-1, 1)
    elif shape == "matrix" and length:
        y_out = np.array([y, y], dtype=object)
        valid = False
    else:
        y_out = y
    return y_out, valid


Y_NAMES = re.compile(r"\by\b|\bX\b|X\[\d+\]|sample_weight")


def test_fuzz_score(model, pair_model, fuzz_scale):
    @fuzz_settings(N_SCORE, fuzz_scale)
    @given(st.data())
    def run(data):
        if data.draw(st.booleans(), label="hostile"):
            X, x_ok = data.draw(st.one_of(single_texts(), text_pairs(), odd_inputs))
            kind = data.draw(st.sampled_from(["any", "any", "int", "str"]))
        else:
            X, x_ok = data.draw(st.one_of(single_texts(hostile=False), text_pairs(hostile=False)))
            kind = "int"
        try:
            n = n_rows(X)
        except (TypeError, IndexError):
            n = 3
        y, y_ok = data.draw(labels_for(n, kind))
        is_strings = len(y) > 0 and isinstance(np.asarray(y, dtype=object).ravel()[0], str)
        clf = for_kind(X, model, pair_model)
        result = outcome("score", lambda: clf.score(X, y), x_ok and y_ok and not is_strings, Y_NAMES, X)
        if result is not None:
            assert isinstance(result, float) and 0.0 <= result <= 1.0

    run()


# ------------------------------------------------------------------------------ threshold
thresholds = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, -0.0, 1e-300, 1 + 1e-12, np.float32(0.7), np.float64(0.95), np.nan, True, False]),
    st.sampled_from([None, "0.9", [0.9], b"1"]),
)


def test_fuzz_threshold(model, fuzz_scale):
    texts = ["great film", "awful plot", "", "the movie was so so"]

    @fuzz_settings(N_THRESHOLD, fuzz_scale)
    @given(thresholds, st.sampled_from(["predict", "predict_proba", "score"]))
    def run(threshold, method):
        ok = isinstance(threshold, (int, float, np.floating)) and not isinstance(threshold, bool)
        ok = ok and 0 < float(threshold) <= 1
        clf = copy.copy(model).set_params(threshold=threshold)
        call = {
            "predict": lambda: clf.predict(texts),
            "predict_proba": lambda: clf.predict_proba(texts),
            "score": lambda: clf.score(texts, [1, 0, 0, 1]),
        }[method]
        result = outcome("threshold", call, ok, re.compile(r"\bthreshold\b"))
        if result is not None and method == "predict_proba":
            check_proba(result, len(texts), len(model.classes_))
        elif result is not None and method == "predict":
            assert result.shape == (len(texts),)

    run()


# ------------------------------------------------------------------------------ fit
FIT_NAMES = re.compile(r"\by\b|\bX\b|X\[\d+\]|calibration_size|batch_size|max_length|epochs")


def test_fuzz_fit(micro_encoder, fuzz_scale):
    @fuzz_settings(N_FIT, min(fuzz_scale, FIT_LONG_SCALE))
    @given(st.data())
    def run(data):
        hostile = data.draw(st.sampled_from([True, False, False]), label="hostile")
        if hostile:
            X, x_ok = data.draw(st.one_of(single_texts(), text_pairs(), odd_inputs))
            kind = data.draw(st.sampled_from(["any", "int", "str"]))
        else:
            X, x_ok = data.draw(st.one_of(single_texts(False, min_size=2), text_pairs(False, min_size=2)))
            kind = data.draw(st.sampled_from(["int", "str"]))
        try:
            n = n_rows(X)
        except (TypeError, IndexError):
            n = 4
        y, y_ok = data.draw(labels_for(n, kind, exact=not hostile))
        bad_params = hostile and data.draw(st.booleans())
        params = {
            "epochs": data.draw(st.sampled_from([0, 1, -1] if bad_params else [0, 1])),
            "batch_size": data.draw(st.sampled_from([1, 4, 16, 0, 2.5] if bad_params else [1, 4, 16])),
            "max_length": data.draw(st.sampled_from([2, 8, 16, 1, 5.0] if bad_params else [2 + is_pairs(X), 8, 16])),
            "calibration_size": data.draw(
                st.sampled_from([0.0, 0.25, -0.1, 1.0, float("nan")] if bad_params else [0.0, 0.0, 0.25])
            ),
        }
        params_ok = (
            params["epochs"] >= 0
            and params["batch_size"] in (1, 4, 16)
            and params["max_length"] in (2, 8, 16)
            and params["calibration_size"] == 0.0
            and not (is_pairs(X) and params["max_length"] < 3)  # a pair needs 3 special tokens
        )
        y_values = np.asarray(y, dtype=object).ravel().tolist() if y_ok else []
        two_classes = len({v for v in y_values}) >= 2
        must_succeed = x_ok and y_ok and params_ok and two_classes
        clf = EarlyExitTextClassifier(micro_encoder, random_state=0, **params)
        fitted = outcome("fit", lambda: clf.fit(X, y), must_succeed, FIT_NAMES, X)
        if fitted is not None:
            assert fitted is clf and clf.classes_.ndim == 1 and len(clf.classes_) >= 2
            assert len(clf.loss_curve_) == params["epochs"]
            proba = clf.predict_proba(X)
            check_proba(proba, n_rows(X), len(clf.classes_))
            assert clf.predict(X).shape == (n_rows(X),)

    run()


# ------------------------------------------------------------------------------ strategy parameters
odd_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-2000, 2000),
    st.sampled_from([np.int64(2), np.int32(-3), np.float32(1.5), np.float64(np.inf), True, None, "2", [1], 1j]),
)


def _is_number(value, integral: bool) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, np.integer) if integral else (int, float, np.integer, np.floating))


STRATEGIES = {
    # name: (build, parameter, valid value test)
    "LayerWeighted": (lambda v: LayerWeighted(power=v), "power", lambda v: _is_number(v, False) and -10 <= v <= 10),
    "temperature": (
        lambda v: SelfDistillation(temperature=v),
        "temperature",
        lambda v: _is_number(v, False) and 0 < v <= 100,
    ),
    "alpha": (lambda v: SelfDistillation(alpha=v), "alpha", lambda v: _is_number(v, False) and 0 <= v <= 1),
    "warmup_epochs": (
        lambda v: SelfDistillation(warmup_epochs=v),
        "warmup_epochs",
        lambda v: _is_number(v, True) and v >= 0,
    ),
    "Patience": (lambda v: Patience(v), "patience", lambda v: _is_number(v, True) and v >= 1),
}


def test_fuzz_strategy_parameters(fuzz_scale):
    """Every strategy parameter is accepted iff finite and in range (numpy numbers too), else refused naming it."""

    @fuzz_settings(N_STRATEGY, fuzz_scale)
    @given(st.sampled_from(sorted(STRATEGIES)), odd_numbers)
    def run(name, value):
        build, parameter, valid = STRATEGIES[name]
        built = outcome("strategy", lambda: build(value), valid(value), re.compile(rf"\b{parameter}\b"))
        if built is not None:
            assert getattr(built, parameter) == value and math.isfinite(getattr(built, parameter))

    run()


# ------------------------------------------------------------------------------ exit-curve tables
CURVE_COLUMNS = ["kind", "threshold", "accuracy", "score", "expected_speedup", "mean_exit_layer", "frac_layer_1"]


@st.composite
def curve_tables(draw):
    """Tables shaped more or less like an exit curve: (table, valid)."""
    columns = draw(st.lists(st.sampled_from(CURVE_COLUMNS), unique=True, max_size=len(CURVE_COLUMNS)))
    n = draw(st.integers(0, 5))
    data = {}
    for column in columns:
        if column == "kind":
            kinds = st.sampled_from(["threshold", "oracle", "oracle_correct", "x"])
            data[column] = draw(st.lists(kinds, min_size=n, max_size=n))
        else:
            data[column] = draw(st.lists(st.one_of(st.floats(0, 12), st.just(float("nan"))), min_size=n, max_size=n))
    table = pd.DataFrame(data, columns=columns)
    valid = (
        {"kind", "threshold", "expected_speedup"} <= set(columns)
        and bool({"accuracy", "score"} & set(columns))
        and (table["kind"] == "threshold").any()
    )
    return table, valid


def test_fuzz_exit_curve_tables(fuzz_scale):
    not_tables = st.sampled_from([None, [], {"kind": ["threshold"]}, "table"]).map(lambda t: (t, False))

    @fuzz_settings(N_CURVE, fuzz_scale)
    @given(st.one_of(curve_tables(), not_tables))
    def run(case):
        table, valid = case
        display = outcome("curve_table", lambda: ExitCurveDisplay.from_curve(table), valid, re.compile(r"\bcurve\b"))
        if display is not None:
            assert len(display.speedup) == len(display.score) == int((table["kind"] == "threshold").sum())

    run()


# ------------------------------------------------------------------------------ threshold search
SEARCH_NAMES = re.compile(r"\b(X|y|thresholds?|scoring|min_speedup|min_score|cv)\b|X\[\d+\]|n_splits")


def test_fuzz_threshold_search(micro_encoder, fuzz_scale):
    texts = [f"{word} film {i}" for i, word in enumerate(["great", "awful"] * 4)]
    labels = [0, 1] * 4

    @fuzz_settings(N_SEARCH, fuzz_scale)
    @given(st.data())
    def run(data):
        X, x_ok = data.draw(st.one_of(st.just((texts, True)), single_texts(), odd_inputs), label="X")
        if X is not texts:
            x_ok = False  # too few rows, or of one class, for 2 folds
        thresholds = data.draw(st.sampled_from([None, (0.5, 0.9), (0.9, 0.9), (), (1.5,), "0.9", (np.float32(0.7),)]))
        scoring = data.draw(
            st.sampled_from(["accuracy", "f1_macro", "nope", accuracy_score, get_scorer("accuracy"), 3, None])
        )
        min_speedup = data.draw(st.sampled_from([None, None, 1.0, 1.5, 0.5, float("nan"), "2"]))
        ok = (
            x_ok
            and thresholds in (None, (0.5, 0.9), (np.float32(0.7),))
            and scoring in ("accuracy", "f1_macro", accuracy_score)
            and (min_speedup is None or min_speedup in (1.0, 1.5))
        )
        model = EarlyExitTextClassifier(micro_encoder, epochs=1, calibration_size=0, random_state=0)
        search = EarlyExitThresholdCV(model, thresholds=thresholds, scoring=scoring, min_speedup=min_speedup, cv=2)
        fitted = outcome("search", lambda: search.fit(X, labels), ok, SEARCH_NAMES)
        if fitted is not None:
            assert 0 < fitted.best_threshold_ <= 1 and fitted.n_splits_ == 2

    run()


# ------------------------------------------------------------------------------ Spark column arguments
class _SparkFrameStandIn:
    """What ``predict_spark`` reads from a Spark DataFrame on the driver, without starting Spark."""

    def __init__(self, columns: list[str]) -> None:
        from pyspark.sql import types

        self.columns = columns
        self.schema = types.StructType([types.StructField(c, types.StringType()) for c in columns])
        # torch_threads is always given, so only the broadcast of a fitted model is used
        self.sparkSession = SimpleNamespace(sparkContext=SimpleNamespace(broadcast=lambda model: model))

    def mapInPandas(self, function, schema):
        return schema


def test_fuzz_spark_column_arguments(model, fuzz_scale):
    pytest.importorskip("pyspark")
    from skearly.integrations.spark import predict_spark

    column = st.one_of(st.sampled_from(["text", "other", "id", "missing", ""]), st.none(), st.integers(), st.just(1.5))

    @fuzz_settings(N_SPARK, fuzz_scale)
    @given(st.one_of(column, st.lists(column, max_size=3), st.tuples(column, column)), st.booleans())
    def run(text_col, pandas_frame):
        frame = pd.DataFrame({"id": ["1"], "text": ["a"], "other": ["b"]})
        sdf = frame if pandas_frame else _SparkFrameStandIn(list(frame.columns))
        names = [text_col] if isinstance(text_col, str) else text_col if isinstance(text_col, list | tuple) else []
        ok = not pandas_frame and len(names) in (1, 2) and all(n in ("text", "other", "id") for n in names)
        schema = outcome(
            "spark_args",
            lambda: predict_spark(model, sdf, text_col, torch_threads=1),
            ok,
            re.compile(r"\b(text_col|sdf)\b"),
        )
        if schema is not None:
            assert schema.fieldNames() == ["id", "text", "other", "prediction", "probability", "exit_layer"]

    run()


# ------------------------------------------------------------------------------ saved fitted state
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 2), st.text(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=2)),
    max_leaves=6,
)


def test_fuzz_saved_fitted_state(model, tmp_path_factory, fuzz_scale):
    """Edits of a saved model's fitted state load as valid, or are refused naming skearly.json and the key."""
    import json
    import shutil

    from skearly import persistence

    saved = model.save(tmp_path_factory.mktemp("fuzz-saved") / "model")
    original = json.loads((saved / persistence.METADATA_FILE).read_text(encoding="utf-8"))
    keys = sorted(original["fitted"])

    @fuzz_settings(N_STATE, fuzz_scale)
    @given(st.sampled_from(keys), st.one_of(st.just("delete"), json_values))
    def run(key, value):
        folder = tmp_path_factory.mktemp("fuzz-edit") / "model"
        shutil.copytree(saved, folder)
        meta = copy.deepcopy(original)
        if value == "delete":
            del meta["fitted"][key]
        else:
            meta["fitted"][key] = value
        (folder / persistence.METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
        names = re.compile(rf"{re.escape(persistence.METADATA_FILE)}.*{re.escape(key)}", re.S)
        loaded = outcome("saved_state", lambda: EarlyExitTextClassifier.load(folder), False, names)
        if loaded is not None:  # an edit that happens to be valid: the model still predicts
            assert loaded.predict(["good film"]).shape == (1,)
        shutil.rmtree(folder.parent)

    run()


# ------------------------------------------------------------------------------ regressions found by fuzzing
@pytest.mark.parametrize("stream", [iter(["a", "b"]), (t for t in ["a", "b"]), map(str, [1, 2])])
def test_iterators_are_refused_with_advice(model, stream):
    with pytest.raises(TypeError, match=r"Iterators and generators are not accepted.*list\(X\)"):
        model.predict(stream)


def test_lone_surrogate_names_the_row(model, pair_model):
    with pytest.raises(ValueError, match=r"X\[1\] is not valid Unicode.*position 3"):
        model.predict(["fine", "bad\ud800 text"])
    with pytest.raises(ValueError, match=r"X\[0\]\[1\] is not valid Unicode"):
        pair_model.predict([("fine", "\udcff")])


def test_max_length_too_small_for_pairs(model, pair_model):
    with pytest.raises(ValueError, match="max_length=2 is too small for text pairs"):
        copy.copy(pair_model).set_params(max_length=2).predict([("a " * 600, "b")])
    assert copy.copy(model).set_params(max_length=2).predict(["a " * 600]).shape == (1,)


def test_max_length_beyond_the_encoders_positions(model, micro_encoder):
    with pytest.raises(ValueError, match=r"max_length=513 is more than this encoder takes \(512 tokens\)"):
        copy.copy(model).set_params(max_length=513).predict(["a"])
    with pytest.raises(ValueError, match="max_length=600"):
        EarlyExitTextClassifier(micro_encoder, max_length=600).fit(["a", "b"], [0, 1])
    assert copy.copy(model).set_params(max_length=512).predict(["word " * 2000]).shape == (1,)


@pytest.mark.parametrize(
    ("y", "error", "match"),
    [
        ([1j, 0j], TypeError, "real numbers or strings, got complex"),
        ([2**70, 1], ValueError, r"outside the 64-bit integer range at rows \[0\]"),
        ([1.0, 2**63], ValueError, r"outside the 64-bit integer range at rows \[1\]"),
        ([fractions.Fraction(1, 3), 1], ValueError, "continuous"),
        ([b"a", b"b"], TypeError, "got bytes"),
    ],
)
def test_odd_label_types(micro_encoder, y, error, match):
    with pytest.raises(error, match=match):
        EarlyExitTextClassifier(micro_encoder, epochs=0, calibration_size=0).fit(["a", "b"], y)


def test_score_with_unseen_and_mismatched_labels(model):
    texts = ["great film", "awful plot"]
    assert model.score(texts, [7, 8]) == 0.0  # unseen labels are errors
    assert model.score(texts, model.predict(texts)) == 1.0
    with pytest.raises(ValueError, match="y holds strings but the classes seen in fit are numbers"):
        model.score(texts, ["good", "bad"])


def test_epochs_zero_fits_heads_untrained(micro_encoder):
    clf = EarlyExitTextClassifier(micro_encoder, epochs=0, calibration_size=0.5, random_state=0)
    clf.fit(["a", "b", "c", "d"], [0, 1, 0, 1])
    assert clf.loss_curve_ == [] and clf.predict(["a"]).shape == (1,)
