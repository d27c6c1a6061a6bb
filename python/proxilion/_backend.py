"""Selection of the hot-path backend.

Every hot path exists twice with one interface: the Rust extension ``proxilion._core`` and
the pure-Python twin in ``proxilion._reference``. This module picks one, once, at import:

* ``PROXILION_BACKEND=native``: the extension, or ``ImportError`` if it is missing.
* ``PROXILION_BACKEND=reference``: the pure-Python twin (for testing and differential runs).
* unset or ``auto``: the extension if it imports; otherwise the twin, with one
  :class:`BackendWarning` saying so (never silently).

Any other value is a :class:`ValueError` naming it.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import Final, Literal

__all__ = ["BACKEND", "BackendWarning", "backend", "impl"]

BackendName = Literal["native", "reference"]


class BackendWarning(RuntimeWarning):
    """The native extension could not be loaded; the pure-Python reference is in use."""


def _select() -> tuple[BackendName, ModuleType]:
    wanted = os.environ.get("PROXILION_BACKEND", "auto").strip().lower() or "auto"
    if wanted not in ("auto", "native", "reference"):
        raise ValueError(
            f"PROXILION_BACKEND must be 'auto', 'native' or 'reference', got {wanted!r}"
        )
    if wanted == "reference":
        from proxilion import _reference

        return "reference", _reference
    try:
        from proxilion import _core
    except ImportError as exc:
        if wanted == "native":
            raise ImportError(
                "PROXILION_BACKEND=native but the extension proxilion._core is not "
                f"importable: {exc}"
            ) from exc
        warnings.warn(
            f"proxilion: native extension unavailable ({exc}); using the pure-Python "
            "reference backend, which is much slower",
            BackendWarning,
            stacklevel=3,
        )
        from proxilion import _reference

        return "reference", _reference
    return "native", _core


_SELECTED = _select()
BACKEND: Final[BackendName] = _SELECTED[0]
#: The active hot-path module: ``proxilion._core`` or ``proxilion._reference``.
impl: Final[ModuleType] = _SELECTED[1]


def backend() -> BackendName:
    """Name of the active hot-path backend: ``"native"`` or ``"reference"``."""
    return BACKEND


def adopt_dataclass(native: type, twin: type, methods: tuple[str, ...] = ()) -> None:
    """Make the native class ``native`` pass for its pure-Python twin dataclass ``twin``.

    Copies the dataclass metadata (so ``dataclasses.fields``/``asdict``/``replace``/
    ``is_dataclass`` and ``match`` work on native instances), the docstring, and the twin's
    ``methods`` the native class does not implement itself.
    """
    for name in ("__dataclass_fields__", "__dataclass_params__", "__match_args__", *methods):
        setattr(native, name, twin.__dict__[name])
    native.__doc__ = twin.__doc__
