"""mkdocs hook: publish ``benchmarks/results/`` and ``research/`` in the site without copying them into ``docs/``.

``benchmarks/tradeoff.py`` writes ``<dataset>.md`` (tables), ``<dataset>.csv`` and
``<dataset>.png`` (plot) to ``benchmarks/results/``; the other benchmarks write their own
pages there. This hook adds those files to the build under the same relative path, so
``docs/benchmarks.md`` can link to them and show the plots, and it replaces the
``<!-- benchmark-results -->`` marker of that page by a heading, links and the plot per
results page (or by a note when no results have been written yet). It also publishes each
study of ``research/`` (its ``README.md`` and the Markdown, CSV and PNG files of its
``results/``) under ``research/<question>/``, so the docs can link to them the same way.
The build stays valid whether or not the results exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPOSITORY = Path(__file__).resolve().parents[2]
RESULTS = REPOSITORY / "benchmarks" / "results"
RESEARCH = REPOSITORY / "research"
PREFIX = "benchmarks/results"
MARKER = "<!-- benchmark-results -->"
PAGE = "benchmarks.md"
PUBLISHED = ("*.md", "*.png", "*.csv")


def _result_pages() -> list[Path]:
    return sorted(RESULTS.glob("*.md")) if RESULTS.is_dir() else []


def _research_files() -> list[Path]:
    """Each study's README.md and its results (``research/<question>/results/*``), as published."""
    if not RESEARCH.is_dir():
        return []
    files = sorted(RESEARCH.glob("*/README.md"))
    return files + [p for pattern in PUBLISHED for p in sorted(RESEARCH.glob(f"*/results/{pattern}"))]


def on_files(files: Files, config: Any) -> Files:
    """Add every results page, CSV and plot to the site, under ``benchmarks/results/`` and ``research/``."""
    results = [p for pattern in PUBLISHED for p in sorted(RESULTS.glob(pattern))] if RESULTS.is_dir() else []
    for path in results + _research_files():
        uri = path.relative_to(REPOSITORY).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Fill the results marker of ``benchmarks.md`` with a link (and the plot) per results page."""
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
