"""How much faster int8 matrix products are than fp32 ones on this CPU, at a transformer layer's shapes.

Issue 11 asks for 5x the plain Hugging Face fp32 forward at batch 64 within 1 point of
accuracy. Early exit alone gives about 2.5x on binary tweets (``backends.md``), so the rest
would have to come from faster layers. This benchmark measures the ceiling that int8 kernels
can give here: it times the linear layers of one encoder layer (query/key/value, attention
output, feed-forward up and down: the matrix products that hold nearly all of a layer's
FLOPs at short inputs) in

* fp32 (``torch.nn.functional.linear``, oneDNN/MKL),
* torch dynamic int8 (``torch.ao.nn.quantized.dynamic.Linear``, FBGEMM: the ``int8`` backend),
* ONNX Runtime dynamic int8 (``MatMulInteger`` after ``quantize_dynamic``: the ``onnx-int8``
  backend), and ONNX Runtime fp32 for reference,

at the row count of a batch of 64 tweets (64 rows x 24 tokens = 1,536 token rows, and a
quarter of that, for the rows still running after the first exits), for MiniLM-L6 (hidden
384, feed-forward 1,536) and MPNet (768 / 3,072). It also records whether the CPU has the
instructions that make int8 products fast (AVX-512 VNNI, AVX-VNNI, AMX): without them, each
int8 multiply-add takes a widening sequence (``vpmaddubsw`` + ``vpmaddwd``) and int8 cannot
double fp32's throughput.

Outputs ``<out>/int8_gemm.{csv,md}``. Run from the repository root: ``python -m research.int8_gemm.int8_gemm``
(about a minute; take the timing lock if other timing work may run).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

from benchmarks._common import command, header, start, write_results

#: encoder -> (hidden size, feed-forward size)
ENCODERS = {"MiniLM-L6": (384, 1536), "MPNet": (768, 3072)}


def layer_shapes(hidden: int, ffn: int) -> dict[str, tuple[int, int]]:
    """(in, out) features of each linear map of one BERT-style layer."""
    return {
        "qkv": (hidden, 3 * hidden),
        "attn_out": (hidden, hidden),
        "ffn_up": (hidden, ffn),
        "ffn_down": (ffn, hidden),
    }


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def median_seconds(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs of enough calls to last ~0.2 s."""
    fn()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.2:
        fn()
        calls += 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times))


def onnx_linear_sessions(weight: torch.Tensor, bias: torch.Tensor, folder: Path):
    """ONNX Runtime sessions (fp32, dynamic int8) of ``x @ weight.T + bias``; ``None`` without onnxruntime."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return None
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
    linear.weight.data, linear.bias.data = weight, bias
    fp32, int8 = folder / "linear.onnx", folder / "linear_int8.onnx"
    example = torch.randn(8, weight.shape[1])
    torch.onnx.export(
        linear, (example,), fp32, input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "rows"}}, dynamo=False
    )
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return tuple(ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for p in (fp32, int8))


def measure(rows_list: list[int], repeats: int) -> pd.DataFrame:
    torch.manual_seed(0)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for encoder, (hidden, ffn) in ENCODERS.items():
            for name, (n_in, n_out) in layer_shapes(hidden, ffn).items():
                fp32 = torch.nn.Linear(n_in, n_out).eval()
                int8 = DynamicInt8Linear(n_in, n_out, dtype=torch.qint8)
                int8.set_weight_bias(torch.quantize_per_tensor(fp32.weight.detach(), 0.01, 0, torch.qint8), fp32.bias)
                folder = Path(tmp) / f"{encoder}-{name}"
                folder.mkdir()
                sessions = onnx_linear_sessions(fp32.weight.detach(), fp32.bias.detach(), folder)
                for rows in rows_list:
                    x = torch.randn(rows, n_in)
                    flops = 2.0 * rows * n_in * n_out
                    kernels = {"torch fp32": partial(fp32, x), "torch int8 (FBGEMM)": partial(int8, x)}
                    if sessions is not None:
                        feed = {"x": x.numpy()}
                        kernels["onnxruntime fp32"] = partial(sessions[0].run, None, feed)
                        kernels["onnxruntime int8"] = partial(sessions[1].run, None, feed)
                    with torch.inference_mode():
                        timings = {kernel: median_seconds(call, repeats) for kernel, call in kernels.items()}
                    for kernel, seconds in timings.items():
                        records.append(
                            {
                                "encoder": encoder,
                                "linear": name,
                                "rows": rows,
                                "in_features": n_in,
                                "out_features": n_out,
                                "kernel": kernel,
                                "microseconds": seconds * 1e6,
                                "gflops_per_s": flops / seconds / 1e9,
                            }
                        )
    table = pd.DataFrame(records)
    base = table[table["kernel"] == "torch fp32"].set_index(["encoder", "linear", "rows"])["microseconds"]
    table["speedup_vs_torch_fp32"] = [
        base[(e, n, r)] / us for e, n, r, us in table[["encoder", "linear", "rows", "microseconds"]].itertuples(False)
    ]
    return table


def per_layer(table: pd.DataFrame) -> pd.DataFrame:
    """Whole-layer linear time per kernel (the four products summed) and its speed-up over fp32."""
    total = table.groupby(["encoder", "rows", "kernel"], sort=False)["microseconds"].sum().unstack("kernel")
    out = total.rdiv(total["torch fp32"], axis=0)
    out.columns = [f"{c}: x fp32" for c in out.columns]
    return out.drop(columns="torch fp32: x fp32").reset_index()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1536,384", help="token rows per product (comma-separated)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    start(args.threads)
    flags = cpu_flags()
    int8_flags = sorted(f for f in flags if "vnni" in f or f.startswith("amx") or f == "avx512bw")
    table = measure([int(r) for r in args.rows.split(",")], args.repeats)
    layers = per_layer(table)
    lines = header("int8 vs fp32 matrix products on this CPU, at an encoder layer's shapes", command(__file__, argv))
    lines += [
        f"CPU instructions for fast int8 (AVX-512 BW/VNNI, AVX-VNNI, AMX) present: {int8_flags or 'none'}; "
        f"AVX2: {'avx2' in flags}, FMA: {'fma' in flags}.",
        "",
        "Each layer's four linear maps (query/key/value, attention output, feed-forward up and down) "
        "timed alone, median of the repeats; `rows` = token rows in the product (1,536 = 64 tweets of "
        "24 tokens; 384 = the quarter still running after the first exits). Per-layer speed-up = "
        "fp32 time of the four products / the kernel's time of the four.",
        "",
        "## Per layer",
        "",
        layers.to_markdown(index=False, floatfmt=".2f"),
        "",
        "## Per product",
        "",
        table.to_markdown(index=False, floatfmt=".2f"),
        "",
    ]
    write_results(args.out, "int8_gemm", table=table, lines=lines)
    print(layers.to_string(index=False))


if __name__ == "__main__":
    main()
