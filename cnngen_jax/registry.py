"""Name -> object tables filled by decorators (`@register_model("dcgan")`), so a config can
select an entry by name and adding one never edits a hand-kept table: a registry of a package
imports every module of it on first lookup, which registers what they define."""

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from cnngen_jax.errors import UserError


class Registry:
    """Entries of one kind, looked up by the config setting that names them."""

    def __init__(self, kind: str, setting: str, package: str | None = None):
        self.kind = kind
        self.setting = setting
        self.package = package  # whose modules register the entries
        self._entries: dict[str, Any] = {}
        self._imported = package is None

    def _import_package(self) -> None:
        if self._imported:
            return
        self._imported = True
        for module in pkgutil.iter_modules(importlib.import_module(self.package).__path__):
            importlib.import_module(f"{self.package}.{module.name}")

    def register(self, name: str) -> Callable[[Any], Any]:
        def register(entry: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return register

    def names(self) -> list[str]:
        self._import_package()
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        """The entry called `name`, or a UserError naming the setting and the known entries."""
        self._import_package()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries))
            raise UserError(
                f"unknown {self.kind} {name!r} ({self.setting}); choose one of: {known}"
            )
        return self._entries[name]
