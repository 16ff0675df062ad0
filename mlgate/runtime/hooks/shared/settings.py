"""A hook's settings: read from the environment once, refused at once when a key is missing."""

from __future__ import annotations

import os
from collections.abc import Mapping


class SettingsError(KeyError):
    """The function's environment lacks keys the stack should have set; names them all."""

    def __str__(self) -> str:
        return str(self.args[0])


def read(
    hook: str, required: tuple[str, ...], defaults: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The required keys (refused together, by name, when any is missing or empty) and the
    optional ones with their defaults."""
    missing = [key for key in required if not os.environ.get(key)]
    if missing:
        raise SettingsError(
            f"the {hook} hook's environment lacks {', '.join(missing)}: the stack sets them "
            "(mlgate/infra/stacks); redeploy it rather than editing the function"
        )
    values = {key: os.environ[key] for key in required}
    values.update({key: os.environ.get(key, default) for key, default in (defaults or {}).items()})
    return values
