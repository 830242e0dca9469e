"""Settings dataclasses built from config mappings, with errors that name the key at fault."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def from_mapping(cls: type[T], d: Mapping[str, Any] | None, where: str) -> T:
    """``cls(**d)`` for a dataclass ``cls``; an unknown or missing key is a ValueError naming
    ``where`` (the config key the mapping came from) and the keys ``cls`` takes."""
    d = dict(d or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    try:
        return cls(**d)
    except TypeError as e:  # a missing required key
        raise ValueError(f"{where}: {e}") from None
