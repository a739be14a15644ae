"""One strict rule for the yes/no options of every plugin and recipe.

Options arrive as text (``-O KEY=VALUE``, a config file) or as Python values
(a test, a checkpoint's config). ``bool("no")`` is ``True``: a flag such as
``trust_remote_code`` parsed that way runs the code it was told not to. Every
boolean option goes through :func:`parse_bool` instead, which accepts only
true/false, yes/no, on/off, 1/0 (any case) and refuses anything else with the
option and its owner named.
"""

from __future__ import annotations

from typing import Any

from bench.errors import PluginError

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def parse_bool(value: Any, option: str, owner: str) -> bool:
    """``value`` as a boolean by the strict rule; PluginError (exit 2) naming ``option`` and ``owner``.

    ``owner`` names who takes the option, e.g. ``"encoder 'hf'"`` or ``"recipe"``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # -O x=1 arrives as the number 1
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    raise PluginError(f"{owner}: option {option}={shown} must be true or false "
                      f"(one of {'/'.join(TRUE_WORDS)} or {'/'.join(FALSE_WORDS)})")
