"""One shape for every extension point's registry: model families, drift detectors, data
sources and loop triggers.

A :class:`Registry` maps a class's ``name`` to the class. ``register`` is a class decorator
(a later registration under the same name replaces the earlier one and moves to the end);
``get`` raises a :class:`~mlwright.exceptions.ConfigError` that names every known entry.
The built-in implementations register themselves when their module is imported; the
registry imports that module on first use, so asking a registry always sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from typing import Generic, TypeVar

from mlwright.exceptions import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    """Named classes of one extension point, in registration order.

    ``kind`` names an entry in messages ("drift detector"); ``builtins`` is the module whose
    import registers the built-in entries; ``register_with`` is the public decorator that
    users call, quoted in the error message.
    """

    def __init__(self, kind: str, *, builtins: str, register_with: str) -> None:
        self.kind = kind
        self.builtins = builtins
        self.register_with = register_with
        self._entries: dict[str, type[T]] = {}
        self._loaded = False

    def register(self, cls: C) -> C:
        """Class decorator: make ``cls`` available under ``cls.name``."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"A {self.kind} needs a non-empty string class attribute `name`; "
                f"{cls.__qualname__} has {name!r}. Set `name = \"...\"` on the class.")
        # Pop first so that a re-registration moves to the end (newest last).
        self._entries.pop(name, None)
        self._entries[name] = cls
        return cls

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            import_module(self.builtins)

    def get(self, name: str, *, setting: str | None = None) -> type[T]:
        """The class registered as ``name``; ``setting`` is the config key that named it."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            what = (f"{setting} names {name!r}, which is not a {self.kind}" if setting
                    else f"Unknown {self.kind} {name!r}")
            raise ConfigError(
                f"{what}; expected one of {known}, or a class registered with "
                f"{self.register_with}.") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def classes(self) -> list[type[T]]:
        """Registered classes in registration order (oldest first)."""
        self._load()
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
