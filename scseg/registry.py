"""One tiny name -> factory registry, shared by models and attention modules."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """Maps names to factories with one contract per registry.

    Args:
        kind: what the registry holds, used in error messages ("model", "attention").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``fn`` under ``name``.

        Raises:
            ValueError: if ``name`` is already taken.
        """

        def wrap(fn: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = fn
            return fn

        return wrap

    def get(self, name: str) -> T:
        """Returns the factory registered under ``name``.

        Raises:
            ValueError: for an unknown name; the message lists the valid ones.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def build(self, name: str, *args, **kwargs):
        """Calls the factory ``name``, turning a wrong option into a clear ``ValueError``.

        Raises:
            ValueError: for an unknown name, or arguments the factory does not take.
        """
        self._bind(name, *args, **kwargs)
        return self.get(name)(*args, **kwargs)

    def _bind(self, name: str, *args, **kwargs) -> inspect.BoundArguments:
        signature = inspect.signature(self.get(name))
        try:
            return signature.bind(*args, **kwargs)
        except TypeError as err:
            raise ValueError(
                f"{self.kind} {name!r}: {err}; it takes: {', '.join(signature.parameters)}"
            ) from None

    def resolved(self, name: str, **kwargs) -> dict:
        """Every keyword of factory ``name``: ``kwargs`` with the defaults filled in.

        Saved with a trained model, this rebuilds it even after a default changes.

        Raises:
            ValueError: as :meth:`build`.
        """
        bound = self._bind(name, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def accepted(self, name: str, options: dict) -> dict:
        """The subset of ``options`` that the factory ``name`` takes as keywords."""
        parameters = inspect.signature(self.get(name)).parameters
        return {k: v for k, v in options.items() if k in parameters}

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
