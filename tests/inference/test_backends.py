"""Inference backends: fast layer runners (bf16, int8, ONNX Runtime) agree with fp32 and never change the fit."""

import copy
import pickle

import numpy as np
import pytest
import torch

from skearly import EarlyExitTextClassifier
from skearly.encoders import tiny_families
from skearly.inference._backends import (
    BACKENDS,
    Bf16Backend,
    CachedBackend,
    Int8Backend,
    OnnxLayerRunner,
    resolve_backend,
)

FAST = ["bf16", "int8", "onnx", "onnx-int8"]
CPU_ONLY = ["int8", "onnx", "onnx-int8"]


def _needs(backend):
    if backend.startswith("onnx"):
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")


@pytest.fixture
def clf(fitted):
    return copy.deepcopy(fitted).set_params(threshold=0.8)


def test_fast_backends_are_registered():
    assert {"torch", *FAST} <= set(BACKENDS.names())
    assert resolve_backend("int8") == Int8Backend()
    assert resolve_backend("bf16") == Bf16Backend()


@pytest.mark.parametrize("backend", FAST)
def test_fast_backend_predicts_like_fp32(clf, toy_data, backend):
    _needs(backend)
    _, _, X_test, y_test = toy_data
    reference = clf.predict_proba(X_test)
    weights = {k: v.clone() for k, v in clf.network_.state_dict().items()}
    proba = clf.set_params(backend=backend).predict_proba(X_test)
    tolerance = 1e-4 if backend == "onnx" else 0.1  # int8: quantization error; bf16: 8-bit mantissa
    np.testing.assert_allclose(proba, reference, atol=tolerance)
    assert np.mean(proba.argmax(1) == reference.argmax(1)) >= 0.95
    assert clf.score(X_test, y_test) >= 0.9
    for name, value in clf.network_.state_dict().items():  # the fitted fp32 weights are untouched
        assert torch.equal(value, weights[name]), name
    assert all(not p.is_quantized for p in clf.network_.parameters())


@pytest.mark.parametrize("backend", FAST)
def test_fast_backend_at_full_depth_and_in_exit_curve(clf, toy_data, backend):
    _needs(backend)
    _, _, X_test, y_test = toy_data
    clf.set_params(backend=backend, threshold=1.0)
    full = clf.predict_proba(X_test)
    curve = clf.exit_curve(X_test, y_test, thresholds=[1.0])
    assert curve["accuracy"].iloc[0] == pytest.approx(np.mean(clf.classes_[full.argmax(1)] == y_test))


@pytest.mark.parametrize("backend", ["int8", "onnx"])
def test_runner_is_built_once_per_network(clf, toy_data, backend, monkeypatch):
    _needs(backend)
    _, _, X_test, _ = toy_data
    cls = type(resolve_backend(backend))
    builds = []
    original = cls.build

    def counting(self, network):
        builds.append(1)
        return original(self, network)

    monkeypatch.setattr(cls, "build", counting)
    clf.set_params(backend=backend, threshold=1.0)
    first = clf.predict_proba(X_test)
    clf.set_params(threshold=0.6).predict(X_test)
    assert len(builds) == 1
    with torch.no_grad():  # new weights in place: a new runner
        clf.network_.heads[-1].out.bias.add_(torch.tensor([5.0, 0.0]))
    clf.set_params(threshold=1.0)
    assert not np.allclose(clf.predict_proba(X_test), first)
    assert len(builds) == 2


def test_saved_and_pickled_models_keep_fp32_weights(clf, toy_data, tmp_path):
    _, _, X_test, _ = toy_data
    clf.set_params(backend="int8")
    expected = clf.predict_proba(X_test)
    loaded = EarlyExitTextClassifier.load(clf.save(tmp_path / "model"))
    assert loaded.backend == "int8"
    np.testing.assert_allclose(loaded.predict_proba(X_test), expected, atol=1e-6)
    unpickled = pickle.loads(pickle.dumps(clf))
    assert all(p.dtype == torch.float32 for p in unpickled.network_.parameters())
    np.testing.assert_allclose(unpickled.predict_proba(X_test), expected, atol=1e-6)


@pytest.mark.parametrize("backend", CPU_ONLY)
def test_cpu_only_backends_refuse_cuda(fitted, backend):
    with pytest.raises(ValueError, match="CPU only"):
        resolve_backend(backend).prepare(fitted.network_, torch.device("cuda"))


def test_onnx_runner_without_onnxruntime_names_the_extra(fitted, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(ImportError, match=r"skearly\[onnx\]"):
        OnnxLayerRunner(fitted.network_, quantize=False)


def test_cached_backend_needs_build(fitted):
    class Unbuilt(CachedBackend):
        name = "unbuilt"

    with pytest.raises(NotImplementedError):
        Unbuilt().prepare(fitted.network_, torch.device("cpu"))


def test_onnx_refuses_families_whose_layers_need_more_than_a_mask(tmp_path):
    from skearly.encoders import make_tiny_encoder
    from skearly.inference._backends import OnnxBackend
    from skearly.network._multi_exit import MultiExitNetwork

    folder = make_tiny_encoder(tmp_path / "mpnet", family="mpnet")
    network = MultiExitNetwork.from_pretrained(str(folder), exit_layers=(1, 2), n_classes=2).eval()
    with pytest.raises(ValueError, match="model_type='mpnet'.*backend='int8'"):
        OnnxBackend().prepare(network, torch.device("cpu"))


@pytest.mark.parametrize("family", ["mpnet", "distilbert"])
def test_int8_runs_every_family(tmp_path, family):
    from conftest import make_texts, tiny_classifier

    from skearly.encoders import make_tiny_encoder

    folder = make_tiny_encoder(tmp_path / family, family=family)
    X, y = make_texts(80, seed=2)
    clf = tiny_classifier(str(folder), epochs=1).fit(X, y)
    expected = clf.set_params(threshold=1.0).predict(X)
    quantized = clf.set_params(backend="int8").predict(X)
    assert np.mean(quantized == expected) > 0.8  # int8 changes a few borderline rows at most


# ---------------------------------------------------------------- calibration with a fast backend
CPU = torch.device("cpu")


def _backend_logits(clf, backend):
    """Every head's logits of the stored calibration rows through ``backend``, and their labels."""
    from skearly._utils.batching import unpack_calibration_inputs
    from skearly.network._full_pass import all_head_logits

    encoded, y = unpack_calibration_inputs(clf.calibration_inputs_)
    runner = resolve_backend(backend).prepare(clf.network_, CPU)
    with torch.inference_mode():
        return all_head_logits(runner, encoded, clf.batch_size, CPU), y


def _engine_with(clf, runner, temperatures):
    from skearly.inference._engine import InferenceEngine
    from skearly.inference._schedulers import resolve_scheduler

    return InferenceEngine(
        runner=runner,
        tokenizer=clf.tokenizer_,
        temperatures=temperatures,
        max_length=clf.max_length,
        batch_size=clf.predict_batch_size,
        device=CPU,
        scheduler=resolve_scheduler(clf.scheduler, CPU),
    )


def test_backends_say_whether_they_refit_temperatures():
    assert not resolve_backend("torch").refits_temperatures
    assert all(resolve_backend(name).refits_temperatures for name in FAST)


def test_int8_predicts_with_temperatures_refitted_on_its_own_logits(clf, toy_data):
    from skearly.calibration import calibrated_head_proba, fit_temperature
    from skearly.exit_criteria import MaxProbability, resolve_criterion
    from skearly.exit_curve import threshold_for_speedup

    _, _, X_test, _ = toy_data
    logits, y = _backend_logits(clf, "int8")
    assert len(y) == 48  # the whole calibration split (20% of 240 rows)
    expected = np.array([fit_temperature(head, y) for head in logits])
    assert np.abs(expected - clf.temperatures_).max() > 1e-5, "int8 logits should move the temperatures"

    report = clf.calibration_report("int8")
    assert report["refitted"].all()
    np.testing.assert_array_equal(report["temperature"], expected)
    np.testing.assert_array_equal(report["fit_temperature"], clf.temperatures_)
    assert clf.backend == "torch"  # reporting on a backend changes no parameter

    clf.set_params(backend="int8", threshold=1.0)
    np.testing.assert_array_equal(clf._engine().temperatures, expected)  # predict and exit_curve use them
    runner = resolve_backend("int8").prepare(clf.network_, CPU)
    proba = clf.predict_proba(X_test)
    refitted = _engine_with(clf, runner, expected).predict(X_test, None, MaxProbability(), 1.0)[0]
    np.testing.assert_array_equal(proba, refitted)
    fit_time = _engine_with(clf, runner, clf.temperatures_).predict(X_test, None, MaxProbability(), 1.0)[0]
    assert not np.array_equal(proba, fit_time)

    # target_speedup picks its threshold from the int8 probabilities of the calibration split
    criterion = resolve_criterion(clf.exit_criterion)
    int8_proba = calibrated_head_proba(logits, expected)
    assert clf.threshold_for_speedup(1.5) == threshold_for_speedup(criterion, int8_proba, clf.head_layers_, 1.5)
    assert clf.threshold_for_speedup(1.5) != threshold_for_speedup(
        criterion, clf.calibration_proba_, clf.head_layers_, 1.5
    )


def test_torch_backend_predicts_exactly_as_before_and_runs_no_calibration_pass(clf, toy_data, monkeypatch):
    from skearly.exit_criteria import MaxProbability
    from skearly.inference import _backend_calibration as backend_calibration

    def no_pass(*args, **kwargs):
        raise AssertionError("the torch backend must not run a calibration pass")

    monkeypatch.setattr(backend_calibration, "all_head_logits", no_pass)
    _, _, X_test, _ = toy_data
    proba = clf.predict_proba(X_test)
    reference = _engine_with(clf, clf.network_, clf.temperatures_).predict(X_test, None, MaxProbability(), 0.8)
    np.testing.assert_array_equal(proba, reference[0])
    np.testing.assert_array_equal(clf.exit_layers_, reference[1])
    assert clf._engine().temperatures is clf.temperatures_
    report = clf.calibration_report()
    assert not report["refitted"].any()
    np.testing.assert_array_equal(report["temperature"], clf.temperatures_)
    np.testing.assert_array_equal(report["ece_fit_temperature"], clf.calibration_report_["ece_after"])


def test_calibration_pass_runs_once_per_backend_and_weights(clf, toy_data, monkeypatch):
    from skearly.inference import _backend_calibration as backend_calibration

    passes = []
    original = backend_calibration.all_head_logits

    def counting(*args, **kwargs):
        passes.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(backend_calibration, "all_head_logits", counting)
    _, _, X_test, y_test = toy_data
    clf.set_params(backend="int8")
    clf.predict(X_test)
    clf.set_params(threshold=0.6).predict_proba(X_test)
    clf.exit_curve(X_test, y_test, thresholds=[0.9])
    clf.calibration_report()
    assert len(passes) == 1
    with torch.no_grad():  # new weights in place: new logits, new temperatures
        clf.network_.heads[0].out.bias.add_(torch.tensor([1.0, 0.0]))
    clf.predict(X_test)
    assert len(passes) == 2


# ---------------------------------------------------------------- bf16 end to end
def test_bf16_carries_bfloat16_from_the_embeddings_to_the_heads(clf, toy_data):
    _, _, X_test, _ = toy_data
    runner = resolve_backend("bf16").prepare(clf.network_, CPU)
    assert all(p.dtype == torch.bfloat16 for p in runner.parameters())
    assert all(p.dtype == torch.float32 for p in clf.network_.parameters())  # the fit is untouched
    seen = []
    run_layer, exit_logits = runner.run_layer, runner.exit_logits

    def watched_layer(index, hidden, context):
        out = run_layer(index, hidden, context)
        seen.append((hidden.dtype, out.dtype))
        return out

    def watched_head(head, hidden, mask):
        out = exit_logits(head, hidden, mask)
        seen.append((hidden.dtype, out.dtype))
        return out

    runner.run_layer, runner.exit_logits = watched_layer, watched_head
    try:
        proba = clf.set_params(backend="bf16", threshold=0.8).predict_proba(X_test)
    finally:
        del runner.run_layer, runner.exit_logits
    assert seen and set(seen) == {(torch.bfloat16, torch.bfloat16)}  # no float32 between layers
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)


def test_bf16_schedulers_and_exit_curve_agree_with_predict(clf, toy_data):
    from skearly import MaxProbability
    from skearly.inference import simulate_exits

    _, _, X_test, y_test = toy_data
    clf.set_params(backend="bf16", predict_batch_size=16)
    head_proba = clf._engine().head_proba(X_test, None)
    for threshold in (0.99, 0.9, 0.8, 0.6):
        clf.set_params(threshold=threshold)
        by_scheduler = {}
        for scheduler in ("shrinking", "refilling"):
            clf.set_params(scheduler=scheduler)
            by_scheduler[scheduler] = (clf.predict_proba(X_test), clf.exit_layers_.copy())
        (p1, l1), (p2, l2) = by_scheduler.values()
        np.testing.assert_array_equal(l1, l2)
        np.testing.assert_allclose(p1, p2, atol=1e-2)  # bf16 rounding of regrouped rows
        replayed = np.asarray(clf.head_layers_)[simulate_exits(MaxProbability(), head_proba, threshold)]
        # a row whose confidence lies within bf16 rounding of the threshold may exit one head apart
        assert np.mean(replayed == l1) >= 0.98
        curve = clf.exit_curve(X_test, y_test, thresholds=[threshold])
        assert curve["mean_exit_layer"].iloc[0] == pytest.approx(l1.mean(), abs=0.1)


def test_bf16_warns_on_a_cpu_without_native_bfloat16(fitted, monkeypatch):
    import skearly.inference._backends as backends

    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: False)
    network = copy.deepcopy(fitted.network_)  # no runner cached for it yet: the warning comes with the build
    with pytest.warns(UserWarning, match="emulated"):
        runner = resolve_backend("bf16").prepare(network, CPU)
    assert next(runner.parameters()).dtype == torch.bfloat16


def test_bf16_refuses_a_gpu_without_bfloat16(fitted, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ValueError, match="bfloat16 support"):
        resolve_backend("bf16").prepare(fitted.network_, torch.device("cuda"))


@pytest.mark.parametrize("family", tiny_families())
def test_bf16_runs_every_family(tmp_path, family):
    from conftest import make_texts, tiny_classifier

    from skearly.encoders import make_tiny_encoder

    folder = make_tiny_encoder(tmp_path / family, family=family)
    X, y = make_texts(80, seed=2)
    clf = tiny_classifier(str(folder), epochs=1, calibration_size=0.5).fit(X, y)
    expected = clf.set_params(threshold=1.0).predict_proba(X)
    proba = clf.set_params(backend="bf16").predict_proba(X)
    np.testing.assert_allclose(proba, expected, atol=0.05)  # bf16 rounding only
    clf.set_params(threshold=0.7).predict(X)
    assert clf.exit_layers_.min() >= 1


def test_row_buckets_are_few_and_pad_little():
    from skearly.inference._backends import _row_bucket

    sizes = {_row_bucket(rows) for rows in range(1, 8193)}
    assert len(sizes) <= 16 + 8 * 5  # 16 up to 256, then 8 per doubling up to 8192
    for rows in range(1, 8193):
        padded = _row_bucket(rows)
        assert padded >= rows and padded % 16 == 0
        assert rows <= 256 or padded <= 1.125 * rows


def test_row_bucketed_linear_computes_the_linear():
    from skearly.inference._backends import _RowBucketedLinear

    torch.manual_seed(0)
    linear = torch.nn.Linear(12, 5)
    bucketed = _RowBucketedLinear(linear)
    assert (bucketed.in_features, bucketed.out_features) == (12, 5)
    assert bucketed.weight is linear.weight
    for shape in [(3, 12), (7, 9, 12), (300, 12)]:
        x = torch.randn(*shape)
        torch.testing.assert_close(bucketed(x), linear(x), rtol=1e-5, atol=1e-6)


def test_bf16_on_cpu_runs_few_matrix_product_shapes(clf, toy_data):
    """An early-exit pass changes its row counts from call to call; the bf16 runner's products see few of them."""
    from torch.overrides import TorchFunctionMode

    from skearly.inference._backends import _row_bucket

    _, _, X_test, _ = toy_data
    runner = resolve_backend("bf16").prepare(clf.network_, CPU)
    assert not any(type(m) is torch.nn.Linear for m in runner.modules())
    rows_seen = []

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.nn.functional.linear:
                rows_seen.append(args[0].shape[0])
            return func(*args, **(kwargs or {}))

    clf.set_params(backend="bf16", threshold=0.7, predict_batch_size=16)
    clf.predict(X_test)  # builds the runner and refits the temperatures first
    with Watch():
        clf.predict(X_test)
    assert rows_seen and all(rows == _row_bucket(rows) for rows in rows_seen)
    assert len(set(rows_seen)) < len(rows_seen)
