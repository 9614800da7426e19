"""Persistence: save a fitted early-exit model, load it elsewhere, move its threshold without refitting.

Two ways to store a fitted :class:`~skearly.EarlyExitTextClassifier`:

* ``joblib.dump`` / ``joblib.load``, like any scikit-learn estimator (the network is
  stored as CPU tensors, so a model fitted on a GPU loads on a CPU-only machine). A
  pickle can run code when loaded: only load files you trust.
* ``clf.save(folder)`` / ``EarlyExitTextClassifier.load(folder)``: safetensors weights
  plus JSON, no pickle (safe to share), when this version of skearly has them.

Either way the loaded model predicts exactly as the saved one, and its predict-time
parameters (``threshold``, ``exit_criterion``) can still be changed with ``set_params``.

Run ``python examples/persistence.py`` (real encoder, a few minutes on a CPU) or add
``--tiny`` for a seconds-long run on a tiny random encoder.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import joblib
import numpy as np

from skearly import EarlyExitTextClassifier
from skearly.datasets import load_tweet_sentiment
from skearly.encoders import make_tiny_encoder


def size_of(path: Path) -> str:
    """Total size of a file or folder, in MB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return f"{sum(p.stat().st_size for p in files) / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=2000, help="training tweets (default: 2000)")
    parser.add_argument("--n-test", type=int, default=1000, help="test tweets (default: 1000)")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default: 1)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the saved models (default: a temp dir)")
    parser.add_argument("--tiny", action="store_true", help="use a tiny random encoder (seconds; for tests)")
    args = parser.parse_args(argv)

    X_train, X_test, y_train, y_test = load_tweet_sentiment(
        classes=("negative", "positive"), n_train=args.n_train, n_test=args.n_test, random_state=0
    )
    encoder = make_tiny_encoder(tempfile.mkdtemp()) if args.tiny else None  # None: packaged all-MiniLM-L6-v2
    clf = EarlyExitTextClassifier(encoder, threshold=0.9, epochs=args.epochs, random_state=0).fit(X_train, y_train)
    expected = clf.predict_proba(X_test)
    out = args.out or Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)

    # 1. joblib (pickle): one file
    path = out / "model.joblib"
    joblib.dump(clf, path)
    loaded = joblib.load(path)
    print(
        f"joblib: {path.name} ({size_of(path)}), same probabilities after load: "
        f"{np.array_equal(loaded.predict_proba(X_test), expected)}"
    )

    # 2. pickle-free folder (safetensors + JSON), when this skearly has save/load
    if hasattr(clf, "save") and hasattr(EarlyExitTextClassifier, "load"):
        folder = clf.save(out / "model")
        loaded = EarlyExitTextClassifier.load(folder)
        files = sorted(p.name for p in Path(folder).iterdir())
        print(
            f"save/load: {Path(folder).name}/ ({size_of(Path(folder))}: {', '.join(files)}), "
            f"same probabilities after load: {np.array_equal(loaded.predict_proba(X_test), expected)}"
        )
    else:
        print("save/load: not available in this version of skearly (joblib only)")

    # the loaded model is a normal estimator: move the threshold, no refit
    for threshold in (0.9, 0.7):
        loaded.set_params(threshold=threshold)
        print(
            f"loaded model, threshold {threshold}: accuracy {loaded.score(X_test, y_test):.3f}, "
            f"mean exit layer {loaded.exit_layers_.mean():.2f}"
        )


if __name__ == "__main__":
    main()
