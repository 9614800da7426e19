"""Shared plumbing of strategy objects (exit criteria, training objectives): equality, repr and name lookup."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["Strategy", "resolve_strategy"]

S = TypeVar("S", bound="Strategy")


class Strategy:
    """Base of small parameter-only strategy objects: equal, hashable and printed by their parameters."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


def resolve_strategy(value: Any, param: str, named: dict[str, type[S]], base: type[S]) -> S:
    """Turn a parameter that is a registered name or a ``base`` instance into an instance.

    Parameters
    ----------
    value : str or Strategy
        The parameter's value.
    param : str
        The parameter's name, for error messages.
    named : dict of str to type
        The registry: alias -> class (built with no arguments).
    base : type
        The strategy base class the value may also be an instance of.

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For anything that is neither a name nor a ``base`` instance.
    """
    if isinstance(value, base):
        return value
    if isinstance(value, str):
        if value not in named:
            raise ValueError(f"{param} must be one of {sorted(named)} or an {base.__name__}, got {value!r}.")
        return named[value]()
    raise TypeError(f"{param} must be a string or an {base.__name__}, got {type(value).__name__}.")
