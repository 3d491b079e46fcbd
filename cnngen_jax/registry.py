"""Name -> object tables filled by decorators (`@register_model("dcgan")`), so a config can
select an entry by name and adding one never edits a hand-kept table."""

from collections.abc import Callable
from typing import Any

from cnngen_jax.errors import UserError


class Registry:
    """Entries of one kind, looked up by the config setting that names them."""

    def __init__(self, kind: str, setting: str):
        self.kind = kind
        self.setting = setting
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def register(entry: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return register

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        """The entry called `name`, or a UserError naming the setting and the known entries."""
        if name not in self._entries:
            known = ", ".join(sorted(self._entries))
            raise UserError(
                f"unknown {self.kind} {name!r} ({self.setting}); choose one of: {known}"
            )
        return self._entries[name]
