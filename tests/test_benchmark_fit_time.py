"""``benchmarks/fit_time.py --quick`` runs end to end and reports what it claims to measure."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_fit_time_quick_run_writes_every_fit_and_the_summary(tmp_path):
    subprocess.run(
        [sys.executable, "benchmarks/fit_time.py", "--quick", "--out", str(tmp_path)],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
        timeout=600,
    )
    runs = pd.read_csv(tmp_path / "fit_time.csv")
    assert list(runs["config"]) == ["random_fp32", "grouped_fp32", "grouped_bf16"]
    # the same rows, fewer padded tokens when grouped
    assert runs["real_tokens"].nunique() == 1
    by_config = runs.set_index("config")
    assert by_config.loc["grouped_fp32", "padded_tokens"] < by_config.loc["random_fp32", "padded_tokens"]
    assert (runs["train_seconds"] <= runs["fit_s"]).all()
    page = (tmp_path / "fit_time.md").read_text()
    assert page.startswith("# Fit time on CPU") and "fit_time_ratio" in page
    assert (tmp_path / "fit_time.png").stat().st_size > 0
