"""JSON with exact numbers, as Xero's APIs carry money: never through float.

Both APIs read request bodies with `loads` (a JSON number becomes a Decimal, so 0.1 stays
0.1; NaN and Infinity, which JSON has not, are refused) and read amounts with `to_decimal`.
Answers whose documents hold Decimals go out through `dumps` / `ExactJSONResponse`, which
write each Decimal as the number it is (12.50 stays 12.50).
"""

import json
import re
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from fastapi.responses import JSONResponse


def loads(body: bytes | str) -> Any:
    """A request body, its numbers as Decimals (or ints); ValueError when it is not JSON,
    or nests deeper than Python's parser can follow."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("the JSON nests too deeply") from None


def _not_json(constant: str) -> NoReturn:
    """NaN and Infinity, which Python's parser would take and JSON has not."""
    raise ValueError(f"{constant} is not a JSON value")


def to_decimal(value: object) -> Decimal | None:
    """A JSON number, or a numeric string, as the exact finite Decimal it writes; None for
    anything else (JSON's true and false are no numbers, nor are objects and arrays)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


_NONCE = secrets.token_hex(8)  # so no string a client sends can pass for a marked number
_MARK = f"\x01{_NONCE}:"
_MARKED_NUMBER = re.compile(rf'"\\u0001{_NONCE}:(-?[0-9]+(?:\.[0-9]+)?)\\u0001{_NONCE}:"')


def _mark_decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{_MARK}{value:f}{_MARK}"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(content: Any) -> bytes:
    """JSON with each Decimal written as the number it is: json.dumps writes it as a marked
    string, which is then unquoted."""
    text = json.dumps(content, default=_mark_decimal, ensure_ascii=False, separators=(",", ":"))
    return _MARKED_NUMBER.sub(r"\1", text).encode()


class ExactJSONResponse(JSONResponse):
    """A JSON answer that may hold Decimals."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
