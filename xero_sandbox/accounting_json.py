"""The Accounting API's wire formats: how Xero writes dates and reads request members.

- Dates go out in Microsoft's JSON form: `/Date(1550793549392)/` for the envelope's
  `DateTimeUTC` and `CreatedDateUTC`, `/Date(1550793549320+0000)/` for `UpdatedDateUTC` and
  document dates (midnight UTC of the day).
- Document dates come in as `2019-02-26`, an ISO date-time (its date part) or `/Date(ms)/`.
- Members of request bodies are matched ignoring case and unknown ones are dropped, as Xero
  reads JSON (the spec's own examples send `bankTransactions` and `Lineitems`); `canonical`
  gives an object's members under Xero's spelling.
- Members are read leniently, as Xero reads them: numbers where text is expected are their
  text (`"Code": 400`), ids ignore case, `"true"` is true, numeric strings are numbers.
"""

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from xero_sandbox.exact_json import to_decimal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_date(moment: datetime) -> str:
    """The envelope's `DateTimeUTC` and `CreatedDateUTC`: `/Date(1550793549392)/`."""
    return f"/Date({_millis(moment)})/"


def ms_date_utc(moment: datetime) -> str:
    """`UpdatedDateUTC`: `/Date(1550793549320+0000)/`."""
    return f"/Date({_millis(moment)}+0000)/"


def ms_day(day: date) -> str:
    """A document date: midnight UTC of the day, `/Date(1551139200000+0000)/`."""
    return ms_date_utc(datetime(day.year, day.month, day.day, tzinfo=UTC))


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_ISO_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ].*)?$")


def parse_day(value: Any) -> date | None:
    """A document date as Xero reads one: `2019-02-26`, an ISO date-time (its date part, as
    written), or `/Date(ms)/`. None when it is none of these."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if match := _MS_DATE.match(text):
        return (_EPOCH + timedelta(milliseconds=int(match.group(1)))).date()
    match = _ISO_DAY.match(text)
    if match is None:
        return None
    try:
        if text != match.group(1):
            datetime.fromisoformat(text)  # the time part must be valid too
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def parse_timestamp(text: str) -> datetime | None:
    """An ISO date or date-time as an aware UTC moment; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def canonical(raw: Any, names: Sequence[str]) -> dict[str, Any]:
    """An object's members under Xero's spelling; unknown members dropped, as Xero drops them."""
    if not isinstance(raw, Mapping):
        return {}
    lookup = {name.casefold(): name for name in names}
    found: dict[str, Any] = {}
    for key, value in raw.items():
        name = lookup.get(str(key).casefold())
        if name is not None:
            found[name] = value
    return found


def read_guid(value: Any) -> str | None:
    """An id as Xero stores it (lower case). Absent, empty and all-zero ids (what SDKs send for
    "not set") are None; a malformed one is kept as written, so it is simply not found."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = uuid.UUID(value.strip())
    except ValueError:
        return value.strip().lower()
    return None if parsed.int == 0 else str(parsed)


def read_text(value: Any) -> str | None:
    """A string member; numbers are read as their text (`"Code": 400`), as Xero reads them."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return None


def read_upper(value: Any) -> str | None:
    """A code or an enum's value, in upper case."""
    text = read_text(value)
    return text.upper() if text else None


def read_flag(value: Any, default: bool) -> bool:
    """A boolean member: JSON's true/false, or the text "true"/"false" in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return default


def read_decimal(value: Any) -> Decimal:
    """A JSON number (or a numeric string) as an exact Decimal; ValueError otherwise."""
    number = to_decimal(value)
    if number is None:
        raise ValueError(f"not a number: {value!r}")
    return number
