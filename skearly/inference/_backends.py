"""Inference backends: how the layers of a fitted network are run at predict time.

A backend turns the fitted :class:`~skearly.network.MultiExitNetwork` into a
*layer runner*: an object with the network's inference parts, which is all the
inference engine (:mod:`skearly.inference`) ever calls:

* ``embed(input_ids, token_type_ids, attention_mask)`` -> hidden states;
* ``layer_context(hidden, attention_mask)`` -> whatever every layer needs besides
  the hidden states (built by the engine once per group of rows; ``attention_mask=None``
  when no row is padded);
* ``run_layer(index, hidden, context)`` -> hidden states after 0-based layer ``index``;
* ``exit_logits(head, hidden, attention_mask)`` -> logits of exit head ``head``;
* the attributes ``exit_layers``, ``n_layers_used`` and ``n_classes``.

Backends are predict-time only: the fitted fp32 weights are never changed, so
``set_params(backend=...)`` needs no refit and persistence always stores the
fp32 network. A backend may cache its runner per network (a quantized copy, a
compiled graph ...). Each backend is one small class registered under a string
alias:

* ``"torch"`` runs the network as it is;
* ``"bf16"`` runs a bfloat16 copy of the network end to end: weights, hidden
  states between layers and heads (the logits come back in float32), on a CPU
  with native bfloat16 matrix units (AMX, AVX-512 BF16) or a GPU;
* ``"int8"`` runs a copy whose ``Linear`` layers (encoder and heads) are
  dynamically quantized to int8 by PyTorch (CPU only);
* ``"onnx"`` and ``"onnx-int8"`` run each encoder layer as its own ONNX Runtime
  graph, in fp32 or dynamically quantized to int8 (CPU only; needs the
  ``onnx`` extra: ``pip install skearly[onnx]``).

The fast runners are built on the first ``predict`` and kept per network (as
long as the network lives and its weights are unchanged), so later predicts
neither re-quantize nor re-export (the user guide compares their accuracy,
calibration and speed with fp32).

Calibration: the temperatures are fitted at fit time on the fp32 network's
logits. ``"onnx"`` reproduces fp32's probabilities; the bf16 and int8 backends move each
head's logits slightly, so the fp32 temperatures drift off. A backend whose
:attr:`InferenceBackend.refits_temperatures` is true
(``"bf16"``, ``"int8"``, ``"onnx"``, ``"onnx-int8"``) therefore gets its own temperatures,
refitted on its logits of the calibration split that the estimator stores at fit
time (:mod:`skearly.inference`), once per backend and network.
"""

from __future__ import annotations

import copy
import tempfile
import threading
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from skearly._utils.devices import cpu_has_native_bf16
from skearly._utils.rounding import round_up
from skearly._utils.strategy import Registry, Strategy
from skearly.network import MultiExitNetwork, weights_fingerprint

__all__ = [
    "InferenceBackend",
    "TorchBackend",
    "CachedBackend",
    "cached_for_network",
    "Bf16Backend",
    "Int8Backend",
    "OnnxBackend",
    "OnnxInt8Backend",
    "OnnxLayerRunner",
    "BACKENDS",
    "resolve_backend",
]


class InferenceBackend(Strategy):
    """Base class of inference backends: subclass it, set ``name``, override :meth:`prepare`, register it.

    Instances are cheap, comparable objects holding only their parameters.
    """

    #: Whether the exit heads' temperatures are refitted on this backend's own logits of the
    #: calibration split (because its logits differ from the fitted network's), instead of
    #: using the temperatures fitted at fit time. See :mod:`skearly.inference`.
    refits_temperatures: ClassVar[bool] = False

    def prepare(self, network: MultiExitNetwork, device: torch.device) -> Any:
        """Return the layer runner for ``network`` on ``device`` (see the module docstring).

        Parameters
        ----------
        network : MultiExitNetwork
            The fitted network, already on ``device`` and in eval mode. It must not be modified.
        device : torch.device
            Where the engine computes.

        Returns
        -------
        object
            An object with ``embed``, ``layer_context``, ``run_layer``, ``exit_logits``,
            ``exit_layers``, ``n_layers_used`` and ``n_classes``.
        """
        raise NotImplementedError


class TorchBackend(InferenceBackend):
    """Run the fitted network as it is, in PyTorch (fp32 on CPU; autocast on CUDA when enabled)."""

    name = "torch"

    def prepare(self, network: MultiExitNetwork, device: torch.device) -> MultiExitNetwork:
        """The network itself is the layer runner."""
        return network


class CachedBackend(InferenceBackend):
    """Base class of backends whose runner is costly to build: built once per network, then reused.

    Subclasses override :meth:`build`. The runner is kept with the network by
    :func:`cached_for_network` (so it goes with the network), together with a
    fingerprint of the network's weights: changing the weights in place or
    loading others builds a new runner. A runner must not hold a reference to
    the network itself (it would never be freed).
    """

    #: Whether the runner can only run on CPU.
    cpu_only: ClassVar[bool] = True

    def prepare(self, network: MultiExitNetwork, device: torch.device) -> Any:
        """The runner built for ``network`` by :meth:`build`, reused while the weights stay the same.

        Raises
        ------
        ValueError
            For a ``device`` the backend cannot run on (:meth:`check_device`).
        """
        self.check_device(torch.device(device))
        return cached_for_network(network, self, lambda: self.build(network))

    def check_device(self, device: torch.device) -> None:
        """Refuse a device this backend cannot run on (called by :meth:`prepare` on every use).

        Raises
        ------
        ValueError
            For a non-CPU ``device`` when :attr:`cpu_only`; subclasses add their own conditions.
        """
        if self.cpu_only and device.type != "cpu":
            raise ValueError(
                f"backend={self.name!r} runs on CPU only, but the device is {device}: use backend='torch' on a "
                "GPU, or device='cpu'."
            )

    def build(self, network: MultiExitNetwork) -> Any:
        """Build the layer runner of ``network`` (on its device, in eval mode) without modifying it."""
        raise NotImplementedError


_CACHE: weakref.WeakKeyDictionary[MultiExitNetwork, dict[Any, tuple[Any, Any]]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.RLock()  # re-entrant: a build may prepare another cached value of the same network


def cached_for_network(network: MultiExitNetwork, key: Any, build: Callable[[], Any]) -> Any:
    """``build()``, computed once per ``network`` and ``key`` and reused while the network's weights stay the same.

    The value is kept with the network (a :class:`weakref.WeakKeyDictionary`, so
    it goes with the network) together with a fingerprint of the weights (storage
    and in-place version of every tensor): changing the weights in place or
    loading others computes it again. This is how :class:`CachedBackend` keeps its
    runners (key: the backend) and how :mod:`skearly.inference` keeps a
    backend's refitted temperatures. Thread-safe; a value must not hold a
    reference to the network itself (it would never be freed).

    Parameters
    ----------
    network : MultiExitNetwork
        The network the value belongs to.
    key : hashable
        What the value is, besides the network (a backend, a tuple ...).
    build : callable
        Computes the value; called with no arguments, under a lock.

    Returns
    -------
    object
        The cached or newly built value.
    """
    fingerprint = weights_fingerprint(network)
    with _CACHE_LOCK:
        values = _CACHE.setdefault(network, {})
        cached = values.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        value = build()
        values[key] = (fingerprint, value)
        return value


class Bf16Backend(CachedBackend):
    """The network in bfloat16 end to end, on a CPU with native bfloat16 matrix units or a GPU.

    The runner is a bfloat16 copy of the fitted network (the fp32 network is
    left untouched), so the hidden states stay in bfloat16 from the embeddings
    to the last layer, rather than being cast back to float32 between layers as
    under autocast; the exit heads' logits come back in float32 for the exit
    decisions. Where bfloat16 is not native (a CPU without AMX or AVX-512 BF16)
    it is emulated, slower than float32: :meth:`build` warns.

    On a CPU, oneDNN compiles a bfloat16 matrix-product kernel for every new
    number of rows, and an early-exit pass makes many (the rows left times the
    trimmed width change from call to call): each ``Linear`` of the copy
    therefore pads its rows up to one of a few sizes (:class:`_RowBucketedLinear`),
    so that a handful of kernels serve every call.
    """

    name = "bf16"
    refits_temperatures = True
    cpu_only = False

    def check_device(self, device: torch.device) -> None:
        """Refuse a GPU without bfloat16 support.

        Raises
        ------
        ValueError
            For a CUDA device without bfloat16 support.
        """
        super().check_device(device)
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"backend='bf16' needs a GPU with bfloat16 support; {device} has none: use 'torch'.")

    def build(self, network: MultiExitNetwork) -> MultiExitNetwork:
        """A deep copy of ``network`` (on its device, in eval mode) with every weight in bfloat16.

        On a CPU its ``Linear`` layers pad their rows to a few sizes (see the class docstring).

        Warns
        -----
        UserWarning
            On a CPU without native bfloat16 matrix units (it runs, emulated, slower than float32);
            once per runner built, not on every ``predict``.
        """
        runner = copy.deepcopy(network).to(torch.bfloat16).eval()
        if next(runner.parameters()).device.type == "cpu":
            if not cpu_has_native_bf16():
                warnings.warn(
                    "backend='bf16' on a CPU without native bfloat16 matrix units (AMX or AVX-512 BF16): bfloat16 "
                    "is emulated there and runs slower than float32; use backend='torch' or 'int8'.",
                    UserWarning,
                    stacklevel=2,
                )
            _bucket_linear_rows(runner)
        return runner


def _row_bucket(rows: int) -> int:
    """``rows`` rounded up to a multiple of 16 up to 256, and to one of 8 sizes per doubling above.

    At most 12.5% of the rows of a matrix product above 256 rows are padding,
    and there are 16 sizes up to 256, then 8 per doubling.
    """
    if rows <= 256:
        return round_up(rows, 16)
    step = 1 << (rows.bit_length() - 4)
    return round_up(rows, step)


class _RowBucketedLinear(nn.Module):
    """A ``Linear`` whose input rows (all leading dimensions together) are zero-padded to :func:`_row_bucket`."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``linear(x)``, computed on ``x``'s rows padded to a bucket size and cut back."""
        flat = x.reshape(-1, self.in_features)
        rows = flat.shape[0]
        padded = _row_bucket(rows)
        if padded != rows:
            flat = nn.functional.pad(flat, (0, 0, 0, padded - rows))
        return nn.functional.linear(flat, self.weight, self.bias)[:rows].reshape(*x.shape[:-1], self.out_features)


def _bucket_linear_rows(module: nn.Module) -> None:
    """Replace every ``nn.Linear`` inside ``module`` by a :class:`_RowBucketedLinear` sharing its weights."""
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, _RowBucketedLinear(child))
        else:
            _bucket_linear_rows(child)


class Int8Backend(CachedBackend):
    """PyTorch dynamic int8 quantization of every ``Linear`` layer (encoder and heads), on CPU.

    Weights are quantized once (per tensor, symmetric int8); activations are
    quantized on the fly per batch. The fitted fp32 network is left untouched:
    the runner is a quantized copy of it.
    """

    name = "int8"
    refits_temperatures = True

    def build(self, network: MultiExitNetwork) -> MultiExitNetwork:
        """A deep copy of ``network`` with its ``Linear`` layers replaced by dynamically quantized ones."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
            from torch.ao.quantization import quantize_dynamic

            return quantize_dynamic(copy.deepcopy(network).cpu().eval(), {nn.Linear}, dtype=torch.qint8)


class OnnxBackend(CachedBackend):
    """Each encoder layer as its own ONNX Runtime graph (fp32), on CPU; embeddings and heads stay in PyTorch.

    Needs ``onnx`` and ``onnxruntime`` (``pip install skearly[onnx]``).
    """

    name = "onnx"
    refits_temperatures = True
    #: Whether to quantize each layer graph to int8 with ``onnxruntime.quantization.quantize_dynamic``.
    quantize: ClassVar[bool] = False

    #: Encoder families whose layers take (hidden states, additive mask), the signature exported.
    model_types: ClassVar[frozenset[str]] = frozenset({"bert", "roberta", "xlm-roberta", "electra"})

    def build(self, network: MultiExitNetwork) -> OnnxLayerRunner:
        """Export every layer up to the last exit to ONNX and open an inference session on each.

        Raises
        ------
        ValueError
            For an encoder family outside :attr:`model_types` (its layers need more than a mask).
        """
        model_type = network.config.model_type
        if model_type not in self.model_types:
            raise ValueError(
                f"backend={self.name!r} runs BERT-style encoders ({sorted(self.model_types)}), not "
                f"model_type={model_type!r}: use backend='int8' (any family) or 'torch'."
            )
        return OnnxLayerRunner(network, quantize=self.quantize)


class OnnxInt8Backend(OnnxBackend):
    """As :class:`OnnxBackend`, with each layer graph dynamically quantized to int8 by ONNX Runtime."""

    name = "onnx-int8"
    quantize = True


class OnnxLayerRunner:
    """Layer runner with the encoder layers in ONNX Runtime sessions (built by :class:`OnnxBackend`).

    Parameters
    ----------
    network : MultiExitNetwork
        The fitted network (not modified, not referenced afterwards: the runner
        keeps its own copies of the embeddings and heads).
    quantize : bool
        Quantize each layer graph to int8 (dynamic quantization) before opening it.
    threads : int or None, default=None
        Threads of each session; ``None`` uses ``torch.get_num_threads()``.

    Raises
    ------
    ImportError
        When ``onnx`` or ``onnxruntime`` is missing (the message names the extra to install).
    """

    def __init__(self, network: MultiExitNetwork, quantize: bool, threads: int | None = None) -> None:
        ort = _import_onnxruntime()
        source = copy.deepcopy(network).cpu().eval()
        self.exit_layers = tuple(source.exit_layers)
        self.n_layers_used = int(source.n_layers_used)
        self.n_classes = int(source.n_classes)
        self.heads = source.heads
        self._embed = source.embed
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # torch runs in between
        hidden_size = int(source.config.hidden_size)
        with tempfile.TemporaryDirectory() as folder:
            self._sessions = [
                ort.InferenceSession(
                    _export_layer(source, index, hidden_size, Path(folder), quantize),
                    options,
                    providers=["CPUExecutionProvider"],
                )
                for index in range(self.n_layers_used)
            ]
        # only the sessions run the layers now: free the copies (the adapter holds them too)
        source.encoder.encoder.layer = nn.ModuleList()
        source.adapter.release_layers()

    def embed(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings, in PyTorch (see :meth:`MultiExitNetwork.embed`)."""
        return self._embed(input_ids, token_type_ids, attention_mask)

    def layer_context(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> np.ndarray:
        """The additive mask ``(batch, 1, 1, length)`` every layer graph takes (``attention_mask=None``: no padding)."""
        if attention_mask is None:
            return np.zeros((hidden.shape[0], 1, 1, hidden.shape[1]), dtype=np.float32)
        blocked = (attention_mask[:, None, None, :] == 0).numpy()
        return np.where(blocked, np.finfo(np.float32).min, np.float32(0.0)).astype(np.float32)

    def run_layer(self, index: int, hidden: torch.Tensor, context: np.ndarray) -> torch.Tensor:
        """Run the ONNX graph of 0-based encoder layer ``index``."""
        feeds = {"hidden": np.ascontiguousarray(hidden.numpy()), "mask": np.ascontiguousarray(context)}
        return torch.from_numpy(self._sessions[index].run(None, feeds)[0])

    def exit_logits(self, head: int, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Logits of exit head ``head``, in PyTorch (fp32)."""
        return self.heads[head](hidden, attention_mask)


class _LayerGraph(nn.Module):
    """One encoder layer as a function of (hidden states, additive attention mask): what is exported."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        output = self.layer(hidden, mask)
        return output[0] if isinstance(output, tuple) else output


def _export_layer(network: MultiExitNetwork, index: int, hidden_size: int, folder: Path, quantize: bool) -> bytes:
    """The serialized ONNX graph of one layer (int8-quantized when asked), with dynamic batch and length."""
    path = folder / f"layer{index}.onnx"
    graph = _LayerGraph(network.encoder.encoder.layer[index]).eval()
    example = (torch.randn(2, 5, hidden_size), torch.zeros(2, 1, 1, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notices
        torch.onnx.export(
            graph,
            example,
            str(path),
            dynamo=False,
            input_names=["hidden", "mask"],
            output_names=["output"],
            dynamic_axes={
                "hidden": {0: "batch", 1: "length"},
                "mask": {0: "batch", 3: "length"},
                "output": {0: "batch", 1: "length"},
            },
            opset_version=17,
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = folder / f"layer{index}.int8.onnx"
        quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
        path = quantized
    return path.read_bytes()


def _import_onnxruntime() -> Any:
    """``onnxruntime``, or an ImportError naming the extra that installs it."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            "backend='onnx' / 'onnx-int8' needs onnx and onnxruntime: pip install 'skearly[onnx]'."
        ) from exc
    return onnxruntime


#: Inference backends by alias (``BACKENDS.register(cls)`` adds one).
BACKENDS: Registry[InferenceBackend] = Registry(InferenceBackend, "backend")
for _backend in (TorchBackend, Bf16Backend, Int8Backend, OnnxBackend, OnnxInt8Backend):
    BACKENDS.register(_backend)


def resolve_backend(backend: str | InferenceBackend) -> InferenceBackend:
    """Turn the ``backend`` parameter (an alias or an :class:`InferenceBackend`) into an object.

    Raises
    ------
    ValueError
        For an unknown alias (the message lists the known ones).
    TypeError
        For anything that is neither a string nor an :class:`InferenceBackend`.
    """
    return BACKENDS.resolve(backend)
