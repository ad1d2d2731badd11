"""The one generic registry: every kind of named choice (data sets, models, losses, …) is one of these.

Shaped like torchvision's `models/_api.py`: entries are added by a `register` decorator (or `add`)
that refuses duplicates, `names()` lists them in registration order — each registry registers in
the order the lectures teach, which is the order menus show — and `get(name)` refuses an unknown
name with a `UserInputError` that lists the valid ones, in one wording for every kind.

References:
    torchvision/models/_api.py (register_model, get_model, list_models).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from engine.errors import UserInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, in registration order."""

    def __init__(self, kind: str):
        self.kind = kind  # "data set", "model", "optimizer": used in messages
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")  # a programming error
        self._entries[name] = entry
        return entry

    def register(self, name: str, make_entry: Callable[[Callable], T] | None = None) -> Callable:
        """Decorator: register the function itself, or the entry `make_entry(function)` builds."""

        def decorator(function: Callable) -> Callable:
            self.add(name, make_entry(function) if make_entry else function)
            return function

        return decorator

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UserInputError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries) or '(none)'}")
        return self._entries[name]

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
