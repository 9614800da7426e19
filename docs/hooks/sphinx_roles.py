"""Griffe extension: render the Sphinx roles of skearly's numpydoc docstrings as links in the site.

The docstrings use Sphinx cross-reference roles (``:class:`EarlyExitTextClassifier```,
``:meth:`~skearly.EarlyExitTextClassifier.exit_curve```, ``:mod:`skearly.inference```),
which ``help()`` and Sphinx understand but Markdown shows verbatim. Before mkdocstrings
renders a docstring, this extension resolves each role's target in the object's scope
and replaces the role by an *optional* autorefs cross-reference: a link when the target
is rendered somewhere in the site, plain code otherwise (never a build warning). Targets
outside skearly (``sklearn.metrics.RocCurveDisplay``, ``ValueError``) become plain code.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

RESOLUTION_ERRORS = (
    griffe.NameResolutionError,
    griffe.AliasResolutionError,
    griffe.CyclicAliasError,
    ValueError,
    KeyError,
    AttributeError,
)
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const):`(?P<tilde>~)?(?P<target>[\w.]+)`")


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """Full dotted path of ``target`` seen from ``obj``'s scope, or ``None`` when it is not in skearly."""
    if target.startswith("skearly."):
        return target
    head, _, rest = target.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:  # griffe resolves a name from an object, its members and its parents
        try:
            full = scope.resolve(head)
        except RESOLUTION_ERRORS:
            scope = scope.parent
            continue
        full = f"{full}.{rest}" if rest else full
        return full if full.startswith("skearly.") else None
    return None


def _rewrite(obj: griffe.Object, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        shown = html.escape(target.rsplit(".", 1)[-1] if match["tilde"] else target)
        full = _resolve(obj, target)
        if full is None:
            return f"`{target.rsplit('.', 1)[-1] if match['tilde'] else target}`"
        return f'<autoref identifier="{html.escape(full)}" optional><code>{shown}</code></autoref>'

    return ROLE.sub(replace, text)


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the docstrings of ``pkg`` and all its (non-alias) members."""
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)
