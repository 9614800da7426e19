"""mkdocs hook: publish ``benchmarks/results/`` in the site without copying it into ``docs/``.

``benchmarks/tradeoff.py`` writes ``<dataset>.md`` (tables), ``<dataset>.csv`` and
``<dataset>.png`` (plot) to ``benchmarks/results/``. This hook adds those files to the
build under the same relative path, so ``docs/benchmarks.md`` can link to them and show
the plots, and it replaces the ``<!-- benchmark-results -->`` marker of that page by a
heading, links and the plot per dataset (or by a note when no results have been written
yet). The build stays valid whether or not the results exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
PREFIX = "benchmarks/results"
MARKER = "<!-- benchmark-results -->"
PAGE = "benchmarks.md"


def _result_pages() -> list[Path]:
    return sorted(RESULTS.glob("*.md")) if RESULTS.is_dir() else []


def on_files(files: Files, config: Any) -> Files:
    """Add every results table, CSV and plot to the site, under ``benchmarks/results/``."""
    extra = [p for suffix in ("*.png", "*.csv") for p in sorted(RESULTS.glob(suffix))] if RESULTS.is_dir() else []
    for path in _result_pages() + extra:
        files.append(File.generated(config, f"{PREFIX}/{path.name}", abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Fill the results marker of ``benchmarks.md`` with a link (and the plot) per dataset."""
    if page.file.src_uri != PAGE or MARKER not in markdown:
        return markdown
    blocks = []
    for path in _result_pages():
        block = f"### {path.stem}\n\nFull tables: [{path.stem}]({PREFIX}/{path.name})."
        if path.with_suffix(".csv").is_file():
            block += f" Every number: [{path.stem}.csv]({PREFIX}/{path.stem}.csv)."
        if path.with_suffix(".png").is_file():
            block += f"\n\n![{path.stem} trade-off]({PREFIX}/{path.stem}.png)"
        blocks.append(block)
    text = "\n\n".join(blocks) or "*No results yet: run `make benchmark` to write `benchmarks/results/`.*"
    return markdown.replace(MARKER, text)
