"""What every strategy object of skearly shares: parameter-based equality, and a registry of string aliases.

Exit criteria, batch schedulers, inference backends and training objectives are
small classes whose instances hold only their parameters. :class:`Strategy`
gives them a readable ``repr`` and equality/hashing by type and parameters (so
``clone``, ``GridSearchCV`` and the fit cache treat equal settings as equal);
:class:`Registry` maps string aliases to classes and turns an estimator
parameter (an alias or an instance) into an instance, with the errors a user
needs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

__all__ = ["Strategy", "Registry"]


class Strategy:
    """Base of strategy objects: ``repr``, ``==`` and ``hash`` come from the type and ``vars(self)``."""

    #: The string alias under which the class is registered ("" for none).
    name: ClassVar[str] = ""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


S = TypeVar("S", bound=Strategy)


class Registry(Generic[S]):
    """String aliases of the strategy classes of one kind, and the resolution of a parameter value.

    Parameters
    ----------
    base : type
        The base class of the strategies (instances of any subclass are accepted as they are).
    param : str
        The estimator parameter the strategies are given through (used in error messages).
    """

    def __init__(self, base: type[S], param: str) -> None:
        self.base = base
        self.param = param
        self.classes: dict[str, type[S]] = {}

    def register(self, cls: type[S]) -> type[S]:
        """Register ``cls`` under ``cls.name`` (usable as a class decorator).

        Raises
        ------
        ValueError
            If ``cls.name`` is empty or already taken by another class.
        """
        if not cls.name:
            raise ValueError(f"{cls.__name__} has no name: set the class attribute `name`.")
        if self.classes.get(cls.name, cls) is not cls:
            raise ValueError(
                f"A {self.base.__name__} named {cls.name!r} is already registered ({self.classes[cls.name].__name__})."
            )
        self.classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        """The registered aliases, sorted."""
        return sorted(self.classes)

    def resolve(self, value: Any, extra_names: tuple[str, ...] = ()) -> S:
        """An instance for ``value``: an instance of the base class as it is, or a new one for an alias.

        Parameters
        ----------
        value : str or instance of the base class
            The parameter value.
        extra_names : tuple of str, default=()
            Other aliases the caller handles itself, listed in the error message.

        Raises
        ------
        ValueError
            For an unknown alias (the message lists the known ones).
        TypeError
            For anything that is neither a string nor an instance of the base class.
        """
        if isinstance(value, self.base):
            return value
        if isinstance(value, str):
            if value not in self.classes:
                names = sorted([*extra_names, *self.classes])
                raise ValueError(
                    f"{self.param} must be one of {names} or a {self.base.__name__} instance, got {value!r}."
                )
            return self.classes[value]()
        raise TypeError(f"{self.param} must be a string or a {self.base.__name__}, got {type(value).__name__}.")
