"""Settings overridden by dotted keys, as a command line gives them.

An override list is ``KEY=VALUE`` pairs separated by ``;`` or ``,`` (a separator inside
brackets, braces or quotes belongs to its value)::

    surfaces.feed.ranker=rank/shuffle; surfaces.feed.explore_share_known=0.2
    surfaces.feed.sources=["two_tower", "sequence"],surfaces.search.ranker=rank/noop

A key is the dotted path of a setting as ``moodboard.toml`` nests it (``surfaces.feed.ranker``
is ``ranker`` in ``[surfaces.feed]``). A value is read as a TOML value (``0.5``, ``true``,
``["a", "b"]``, ``"quoted text"``, ``{ k = 1 }``); anything else is a bare string
(``rank/shuffle``). The overridden settings are validated as the config file is: an unknown key
or a bad value is a ``ConfigError`` that names it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from moodboard.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
_OPEN, _CLOSE = "[{", "]}"


def _split(text: str) -> list[str]:
    """``text`` cut at the ``;`` and ``,`` outside brackets, braces and quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        elif ch in ";," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _value(raw: str) -> Any:
    """A TOML value, else the bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_overrides(text: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (see the module docstring) as ``{dotted key: value}``; empty text
    gives no overrides.

    Raises
    ------
    ConfigError
        If a pair has no ``=``, an empty key, or a key given twice.
    """
    out: dict[str, Any] = {}
    for pair in _split(text):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(
                f"A settings override must look like section.key=value (e.g. "
                f"surfaces.feed.ranker=rank/shuffle). Got {pair!r} instead."
            )
        if key in out:
            raise ConfigError(f"The setting {key!r} is overridden twice in {text!r}.")
        out[key] = _value(raw.strip())
    return out


def apply_overrides(settings: M, overrides: Mapping[str, Any]) -> M:
    """A copy of ``settings`` with each dotted key set to its value, validated.

    Raises
    ------
    ConfigError
        If a key names no setting, or a value is not valid for its setting (the message names
        both).
    """
    if not overrides:
        return settings
    data = settings.model_dump()
    for key, value in overrides.items():
        node = data
        *path, leaf = key.split(".")
        for j, part in enumerate(path):
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                where = ".".join(path[: j + 1])
                raise ConfigError(
                    f"Unknown setting {key!r}: {where!r} is not a section of the settings "
                    "(see configs/moodboard.toml for the keys)."
                )
            node = child
        node[leaf] = value
    try:
        return type(settings).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(
            f"The overrides {dict(overrides)} do not give valid settings ({problems}): fix the "
            "key or the value (see configs/moodboard.toml)."
        ) from None
