"""The envelope every event carries, and the field types the contracts share.

Contract rules that apply to every event:

- JSON, UTF-8; one event per Kafka record.
- `type`, `event_id`, `occurred_at` and `schema_version` are required on the wire.
- Money is a decimal *string* (never a JSON number) with at most the currency's minor
  units after the point.
- Timestamps are RFC 3339 with an offset; dates are ISO 8601 (`YYYY-MM-DD`).
- Unknown fields are rejected: a misspelt optional field must not pass silently and lose
  data on its way to Xero. New fields arrive with a new `schema_version`.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from .currencies import MINOR_UNITS

SCHEMA_VERSION: Final = 1

# Printable text: no NUL (PostgreSQL cannot store it) and no other C0 control characters
# except tab, line feed and carriage return.
_PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"),
]
"""A stable identifier from the bank: letters, digits, `.`, `_`, `:`, `-`; 1-64 chars."""

AccountIdentifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"),
]
"""An account id; at most 50 characters because it becomes Xero's feed `accountToken`."""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class _Printable:
    """Rejects control characters with a message a producer can act on, and documents the
    rule as a `pattern` in the JSON Schema."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_check_printable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = _PRINTABLE
        return json_schema


def _check_printable(value: str) -> str:
    if found := _CONTROL.search(value):
        raise ValueError(
            f"contains control character U+{ord(found.group()):04X} at position {found.start()}"
        )
    return value


PRINTABLE = _Printable()
PrintableText = Annotated[str, PRINTABLE]
"""Free text without control characters; each field bounds its length with `Field`."""


def _currency(value: object) -> object:
    if isinstance(value, str) and value not in MINOR_UNITS:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code accepted for accounts")
    return value


CurrencyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    BeforeValidator(_currency),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "enum": sorted(MINOR_UNITS),
            "description": "ISO 4217 alphabetic code, upper case.",
            "examples": ["HKD", "CNY", "USD"],
        }
    ),
]

_SIGNED_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$")
_UNSIGNED_DECIMAL_PATTERN = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$"


def _decimal_from_string(value: object) -> object:
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - pydantic turns ValueError into a validation error
            'must be a decimal string such as "125.50", not a JSON number'
        )
    if not _SIGNED_DECIMAL.fullmatch(value):
        raise ValueError(
            "must be a decimal string with at most 15 digits before the point and 4 after, "
            'such as "125.50"'
        )
    try:
        return Decimal(value)
    except InvalidOperation as error:  # pragma: no cover - the pattern already guards this
        raise ValueError("not a decimal number") from error


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


_decimal_serializer = PlainSerializer(str, return_type=str, when_used="json")

SignedMoney = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    _decimal_serializer,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _SIGNED_DECIMAL.pattern,
            "description": "Decimal string; negative allowed.",
            "examples": ["10250.75", "-30.00"],
        }
    ),
]

PositiveMoney = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    AfterValidator(_positive),
    _decimal_serializer,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _UNSIGNED_DECIMAL_PATTERN,
            "not": {"pattern": r"^0(\.0*)?$"},
            "description": "Decimal string greater than zero.",
            "examples": ["125.50"],
        }
    ),
]


def check_minor_units(currency: str, field: str, amount: Decimal) -> None:
    """Refuse more decimal places than the currency has (e.g. 0.001 HKD or 1.5 JPY)."""
    exponent = amount.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    allowed = MINOR_UNITS.get(currency, 2)
    if places > allowed:
        raise ValueError(
            f"{field} {amount} has {places} decimal places; {currency} allows {allowed}"
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


ENVELOPE: Final = ("type", "event_id", "occurred_at", "schema_version")


def _require_envelope(schema: dict[str, Any]) -> None:
    required = schema.setdefault("required", [])
    for name in ENVELOPE:
        if name not in required:
            required.append(name)


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,  # no coercion: 5 is not a timestamp, "1" is not a count
        populate_by_name=False,
        json_schema_extra=_require_envelope,
    )

    type: str = Field(description="The event's name; every event class fixes it.")
    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        description="Unique id of this event (UUID). Consumers use it for tracing; "
        "deduplication uses the business key named by each event.",
    )
    occurred_at: AwareDatetime = Field(
        default_factory=utc_now,
        description="When the event happened at its source; RFC 3339 with an offset.",
    )
    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="Version of this event's schema; currently 1."
    )
