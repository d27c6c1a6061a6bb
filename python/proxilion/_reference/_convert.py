"""Argument conversion shared by the reference twins (mirrors rust/python/src/convert.rs)."""

from __future__ import annotations


def text_or_bytes(obj: object, what: str) -> bytes:
    """Bytes of a ``str`` (UTF-8) or ``bytes``/``bytearray`` argument.

    Raises ``ValueError`` for a ``str`` with surrogates and ``TypeError`` for other types,
    with the same messages as the native module.
    """
    if isinstance(obj, str):
        try:
            return obj.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{what} is not valid Unicode text (it contains surrogate code points)"
            ) from None
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    raise TypeError(f"{what} must be str or bytes, not {type(obj).__name__}")
