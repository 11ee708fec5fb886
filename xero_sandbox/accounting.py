"""The Accounting API's rules, as the sandbox keeps them: the organisation, its chart of
accounts, its currencies, the contacts bank transactions name, and bank transactions.

`xero_sandbox/api/accounting.py` turns HTTP into calls here and answers with the documents
built here (shapes and enums from Xero's accounting OpenAPI document, "the spec").

- `where` and `order` follow Xero's Dynamic-LINQ syntax (`compile_where`): unknown fields
  and type clashes (a Guid compared with a string) are QueryParseExceptions, as on Xero;
  member names and string comparisons ignore case, as Xero's do.
- Members of request bodies are matched ignoring case and unknown ones are dropped, as Xero
  reads JSON (the spec's own examples send `bankTransactions` and `Lineitems`).
- Accounts: DELETED accounts vanish from the API; codes and names are unique among the
  others, ignoring case; a BANK account needs a bank account number and a currency the
  organisation holds; an account with transactions cannot be deleted.
- Currencies: an organisation without multi-currency holds only its base currency.
- Bank transactions: RECEIVE and SPEND (the sandbox refuses the other types), on an ACTIVE
  BANK account, in that account's currency, with a contact (found by ContactID,
  ContactNumber or Name; created from a Name) and at least one line coded to an active
  non-bank account. An undated one is dated today in the organisation's time zone. Totals
  follow from the lines; the sandbox has no tax rates, so a line's tax is the TaxAmount it
  gives, else zero. References are never de-duplicated: the same request twice makes two
  transactions, as on Xero; only an Idempotency-Key (kept by the gateway) prevents that.

Messages are Xero's own where known: "Please enter a unique Name." and the Contact one
(spec examples); "Please enter a unique Code.", "Please enter a valid Bank Account Number.",
"Account Code is too long…", "Account code or ID must be specified.", "Account code '…' is
not a valid code for this document.", "Account code '…' has been archived, or has been
deleted…", "The specified bank account details do not match a known bank account", "The
quantity value '…' is invalid…", and the QueryParseException texts (Dynamic LINQ's), as Xero
has been seen to send them. "The currency code '…' is not subscribed to by this
organisation." is Xero-like but unconfirmed. Every other message is the sandbox's wording.
"""

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from operator import ge, gt, le, lt
from types import MappingProxyType
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from shared.xero_timezones import XERO_TO_IANA
from xero_sandbox.state import Account, BankTransaction, Contact, Organisation, new_id

T = TypeVar("T")

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
"""What Xero echoes as the id of an object it refused to create (spec examples)."""
CENT = Decimal("0.01")
QUANTITY_STEP = Decimal("0.0001")
RATE_STEP = Decimal("0.000001")
MAX_REFERENCE = 255
"""Xero's documented limit for invoice references; the spec states none for bank
transactions, so the sandbox applies the same one."""
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Refusal(Exception):
    """Xero refuses the request: 400 ValidationException, with the refused element if any."""

    def __init__(self, messages: Sequence[str], element: dict[str, Any] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
        self.element = element


# ----------------------------------------------------------------------------- formats


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


def today_in(organisation: Organisation, now: datetime) -> date:
    """The organisation's date now, in its own time zone."""
    return now.astimezone(ZoneInfo(XERO_TO_IANA.get(organisation.timezone, "Etc/UTC"))).date()


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


def guid(value: Any) -> str | None:
    """An id as Xero stores it (lower case). Absent, empty and all-zero ids (what SDKs send for
    "not set") are None; a malformed one is kept as written, so it is simply not found."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = uuid.UUID(value.strip())
    except ValueError:
        return value.strip().lower()
    return None if parsed.int == 0 else str(parsed)


def _text(value: Any) -> str | None:
    """A string member; numbers are read as their text (`"Code": 400`), as Xero reads them."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return None


def _upper(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text else None


def _flag(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return default


def decimal(value: Any) -> Decimal:
    """A JSON number (or a numeric string) as an exact Decimal; ValueError otherwise."""
    text = ""  # JSON's true and false are no numbers, nor are objects and arrays
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        text = str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return number


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


# ----------------------------------------------------------------------------- where, order


class QueryParseError(Exception):
    """A `where` or `order` Xero cannot parse: 400 QueryParseException (ErrorNumber 16)."""


FieldType = Literal["string", "enum", "guid", "bool", "number", "date", "datetime"]
Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


@dataclass(frozen=True)
class Fields:
    """What `where` and `order` may name on one resource, with each field's type."""

    type_name: str
    types: Mapping[str, FieldType]

    def resolve(self, path: str) -> str | None:
        """Xero's field name for `path`; Dynamic LINQ ignores the case of member names."""
        folded = path.casefold()
        return next((name for name in self.types if name.casefold() == folded), None)


# Operand kinds beyond the field types: literals of null, DateTime and bare words.
_TYPE_NAMES = {
    "string": "String", "enum": "String", "ident": "String", "guid": "Guid",
    "bool": "Boolean", "number": "Decimal", "date": "DateTime", "datetime": "DateTime",
    "null": "Object",
}  # fmt: skip
_FAMILIES = {
    "string": "text", "enum": "text", "guid": "guid", "bool": "bool", "number": "number",
    "date": "time", "datetime": "time",
}  # fmt: skip
_COMPARISONS = {"==": "==", "=": "==", "!=": "!=", "<>": "!=", ">": ">", ">=": ">=", "<": "<",
                "<=": "<="}  # fmt: skip
_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {">": gt, ">=": ge, "<": lt, "<=": le}
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"]|"")*")|(?P<number>\d+(?:\.\d+)?)'
    r"|(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r"|(?P<op>==|!=|<>|>=|<=|&&|\|\||[=<>!(),-]))"
)


@dataclass(frozen=True)
class _Operand:
    kind: str
    value: Any = None
    path: str | None = None

    def get(self, row: Row) -> Any:
        return row.get(self.path) if self.path is not None else self.value


@dataclass(frozen=True)
class _Test:
    test: Predicate


_Node = _Operand | _Test


def compile_where(text: str | None, fields: Fields) -> Predicate:
    """Xero's `where`: comparisons (`==`, `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`) of fields
    with literals ("text", numbers, true/false, null, `Guid("…")`, `DateTime(2020, 1, 31)`,
    `DateTime.Parse("2020-01-31T00:00:00")`), `.Contains/.StartsWith/.EndsWith("…")`,
    `.ToString()`, joined by AND/&&, OR/||, NOT/! and parentheses. A bare word compared with
    an enum field is its value (`Type==BANK`, as the spec's Ruby example writes it)."""
    if text is None or not text.strip():
        return _always
    return _Parser(text, fields).predicate()


def compile_order(text: str | None, fields: Fields) -> list[tuple[str, bool]]:
    """Xero's `order`: `Name ASC, Code DESC` as (field, descending) pairs."""
    keys: list[tuple[str, bool]] = []
    if text is None or not text.strip():
        return keys
    for part in text.split(","):
        words = part.split()
        if not 1 <= len(words) <= 2:
            raise QueryParseError("Expression expected")
        path = fields.resolve(words[0])
        if path is None:
            raise _no_field(words[0], fields)
        direction = words[1].casefold() if len(words) == 2 else "asc"
        if direction not in {"asc", "ascending", "desc", "descending"}:
            raise QueryParseError("',' or end of expression expected")
        keys.append((path, direction.startswith("desc")))
    return keys


def select(
    items: Iterable[T],
    row_of: Callable[[T], Row],
    fields: Fields,
    *,
    where: str | None,
    order: str | None,
) -> list[T]:
    """The items `where` admits, in `order` (else as stored). Both are parsed before any item
    is looked at, so a bad query fails even when there is nothing to filter, as on Xero."""
    test = compile_where(where, fields)
    keys = compile_order(order, fields)
    if test is _always and not keys:
        return list(items)
    chosen = [(item, row) for item in items if test(row := row_of(item))]
    for path, descending in reversed(keys):  # stable sorts, last key first
        chosen.sort(key=_sort_key(path), reverse=descending)
    return [item for item, _ in chosen]


def _sort_key(path: str) -> Callable[[tuple[Any, Row]], tuple[int, Any]]:
    """Nulls first, as SQL Server sorts them; text ignoring case."""

    def key(pair: tuple[Any, Row]) -> tuple[int, Any]:
        value = _comparable(pair[1].get(path))
        return (0, 0) if value is None else (1, value)

    return key


def _always(_row: Row) -> bool:
    return True


def _no_field(name: str, fields: Fields) -> QueryParseError:
    return QueryParseError(f"No property or field '{name}' exists in type '{fields.type_name}'")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    text = text.rstrip()
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            rest = text[position:].lstrip()
            if rest.startswith('"'):
                raise QueryParseError("Unterminated string literal")
            raise QueryParseError(f"Syntax error '{rest[0]}'")
        kind = str(match.lastgroup)
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over Xero's where syntax, type-checking as Dynamic LINQ does."""

    def __init__(self, text: str, fields: Fields) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.fields = fields

    def predicate(self) -> Predicate:
        node = self.disjunction()
        if self.at < len(self.tokens):
            raise QueryParseError("')' or operator expected")
        return _boolean(node)

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise QueryParseError("Expression expected")
        self.at += 1
        return self.tokens[self.at - 1]

    def accept(self, *texts: str) -> bool:
        token = self.peek()
        if token is not None and token.casefold() in texts:
            self.at += 1
            return True
        return False

    def disjunction(self) -> _Node:
        node = self.conjunction()
        while self.accept("or", "||"):
            node = _Test(_either(_boolean(node), _boolean(self.conjunction())))
        return node

    def conjunction(self) -> _Node:
        node = self.negation()
        while self.accept("and", "&&"):
            node = _Test(_both(_boolean(node), _boolean(self.negation())))
        return node

    def negation(self) -> _Node:
        if self.accept("not", "!"):
            return _Test(_negated(_boolean(self.negation())))
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.primary()
        operator = self.peek()
        if operator in _COMPARISONS and self.tokens[self.at][0] == "op":
            self.at += 1
            return _compare(left, _COMPARISONS[operator], self.primary(), self.fields)
        return left

    def primary(self) -> _Node:
        kind, text = self.take()
        if kind == "string":
            return _Operand("string", text[1:-1].replace('""', '"'))
        if kind == "number":
            return _Operand("number", Decimal(text))
        if kind == "name":
            return self.name(text)
        if text == "-" and self.peek() is not None and self.tokens[self.at][0] == "number":
            return _Operand("number", -Decimal(self.take()[1]))
        if text == "(":
            node = self.disjunction()
            if not self.accept(")"):
                raise QueryParseError("')' or operator expected")
            return node
        raise QueryParseError("Expression expected")

    def name(self, text: str) -> _Node:
        folded = text.casefold()
        if folded in {"true", "false"}:
            return _Operand("bool", folded == "true")
        if folded == "null":
            return _Operand("null")
        if self.accept("("):
            return self.call(text, self.arguments())
        path = self.fields.resolve(text)
        if path is not None:
            return _Operand(self.fields.types[path], path=path)
        return _Operand("ident", text)  # an enum's value, or else an unknown field

    def arguments(self) -> list[_Operand]:
        found: list[_Operand] = []
        if self.accept(")"):
            return found
        while True:
            argument = self.primary()
            if not isinstance(argument, _Operand):
                raise QueryParseError("Expression expected")
            found.append(argument)
            if self.accept(")"):
                return found
            if not self.accept(","):
                raise QueryParseError("')' or ',' expected")

    def call(self, text: str, arguments: list[_Operand]) -> _Node:
        folded = text.casefold()
        if folded == "guid":
            return _guid_literal(arguments)
        if folded == "datetime":
            return _datetime_literal(arguments)
        if folded == "datetime.parse":
            return _parsed_datetime(arguments)
        head, _, method = text.rpartition(".")
        path = self.fields.resolve(head) if head else None
        if path is None:
            raise _no_field(head or text, self.fields)
        return _method(_Operand(self.fields.types[path], path=path), method, arguments)


def _guid_literal(arguments: list[_Operand]) -> _Operand:
    if len(arguments) != 1 or arguments[0].kind != "string":
        raise QueryParseError("No applicable method 'Guid' exists for these arguments")
    try:
        return _Operand("guid", str(uuid.UUID(str(arguments[0].value))))
    except ValueError:
        raise QueryParseError("Unrecognized Guid format.") from None


def _datetime_literal(arguments: list[_Operand]) -> _Operand:
    numbers = [a.value for a in arguments if a.kind == "number" and a.value == int(a.value)]
    if len(numbers) != len(arguments) or len(numbers) not in {3, 6}:
        raise QueryParseError("No matching constructor in type 'DateTime'")
    try:
        parts = [int(n) for n in numbers] + [0, 0, 0]
        year, month, day, hour, minute, second = parts[:6]
        moment = datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - naive UTC
        return _Operand("datetime", moment)
    except ValueError:
        raise QueryParseError(
            "Year, Month, and Day parameters describe an un-representable DateTime."
        ) from None


def _parsed_datetime(arguments: list[_Operand]) -> _Operand:
    moment = None
    if len(arguments) == 1 and arguments[0].kind == "string":
        moment = parse_timestamp(str(arguments[0].value))
    if moment is None:
        raise QueryParseError("String was not recognized as a valid DateTime.")
    return _Operand("datetime", moment)


def _method(target: _Operand, method: str, arguments: list[_Operand]) -> _Node:
    name = method.casefold()
    textual = target.kind in {"string", "enum"}
    if name == "tostring" and not arguments:
        return _Operand("string", path=target.path)
    if name in {"tolower", "toupper"} and textual and not arguments:
        return _Operand("string", path=target.path)  # comparisons ignore case anyway
    if (
        name in {"contains", "startswith", "endswith"}
        and textual
        and len(arguments) == 1
        and arguments[0].kind == "string"
    ):
        return _Test(_text_test(name, str(target.path), str(arguments[0].value)))
    raise QueryParseError(
        f"No applicable method '{method}' exists in type '{_TYPE_NAMES[target.kind]}'"
    )


def _text_test(method: str, path: str, needle: str) -> Predicate:
    wanted = needle.casefold()

    def test(row: Row) -> bool:
        value = row.get(path)
        if not isinstance(value, str):
            return False
        text = value.casefold()
        if method == "contains":
            return wanted in text
        return text.startswith(wanted) if method == "startswith" else text.endswith(wanted)

    return test


def _compare(left: _Node, operator: str, right: _Node, fields: Fields) -> _Test:
    if not isinstance(left, _Operand) or not isinstance(right, _Operand):
        raise QueryParseError(
            f"Operator '{operator}' incompatible with operand types 'Boolean' and 'Boolean'"
        )
    left, right = _enum_word(left, right, fields), _enum_word(right, left, fields)
    kinds = {left.kind, right.kind}
    families = {_FAMILIES.get(kind, kind) for kind in kinds}
    equality = operator in {"==", "!="}
    if ("null" in kinds and equality) or (
        "null" not in kinds
        and len(families) == 1
        and (equality or families.isdisjoint({"guid", "bool"}))
    ):
        return _Test(_comparison(left, operator, right))
    raise QueryParseError(
        f"Operator '{operator}' incompatible with operand types "
        f"'{_TYPE_NAMES[left.kind]}' and '{_TYPE_NAMES[right.kind]}'"
    )


def _enum_word(word: _Operand, other: _Operand, fields: Fields) -> _Operand:
    if word.kind != "ident":
        return word
    if other.kind == "enum":
        return _Operand("string", word.value)
    raise _no_field(str(word.value), fields)


def _comparison(left: _Operand, operator: str, right: _Operand) -> Predicate:
    def test(row: Row) -> bool:
        a, b = _comparable(left.get(row)), _comparable(right.get(row))
        if operator in {"==", "!="}:
            return bool(a == b) == (operator == "==")
        return a is not None and b is not None and bool(_ORDERINGS[operator](a, b))

    return test


def _comparable(value: Any) -> Any:
    """Text ignoring case; dates and moments as naive UTC date-times."""
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)  # noqa: DTZ001 - naive UTC
    return value


def _boolean(node: _Node) -> Predicate:
    if isinstance(node, _Test):
        return node.test
    if node.kind == "bool":
        return _truth(node)
    raise QueryParseError("Expression of type 'Boolean' expected")


def _truth(operand: _Operand) -> Predicate:
    def test(row: Row) -> bool:
        return operand.get(row) is True

    return test


def _either(left: Predicate, right: Predicate) -> Predicate:
    def test(row: Row) -> bool:
        return left(row) or right(row)

    return test


def _both(left: Predicate, right: Predicate) -> Predicate:
    def test(row: Row) -> bool:
        return left(row) and right(row)

    return test


def _negated(inner: Predicate) -> Predicate:
    def test(row: Row) -> bool:
        return not inner(row)

    return test


def page_of(items: list[T], page: int, size: int | None) -> tuple[list[T], dict[str, int]]:
    """One page (1-based) and Xero's `pagination` object for it."""
    size = min(max(size or DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
    page = max(page, 1)
    count = len(items)
    pagination = {
        "page": page,
        "pageSize": size,
        "pageCount": (count + size - 1) // size,
        "itemCount": count,
    }
    return items[(page - 1) * size : page * size], pagination


# ----------------------------------------------------------------------------- organisation

_VERSIONS = {"AU": "AU", "NZ": "NZ", "GB": "UK", "US": "US"}
_YEAR_ENDS = {"AU": (30, 6), "NZ": (31, 3)}


def organisation_document(organisation: Organisation) -> dict[str, Any]:
    """`GET /Organisation`'s organisation: Version from the country (AU, NZ, UK, US, else
    GLOBAL), Class PREMIUM when it has multi-currency (the plan that includes it)."""
    day, month = _YEAR_ENDS.get(organisation.country_code, (31, 12))
    return {
        "OrganisationID": organisation.tenant_id,
        "Name": organisation.name,
        "LegalName": organisation.name,
        "PaysTax": True,
        "Version": _VERSIONS.get(organisation.country_code, "GLOBAL"),
        "OrganisationType": "COMPANY",
        "BaseCurrency": organisation.base_currency,
        "CountryCode": organisation.country_code,
        "IsDemoCompany": organisation.is_demo,
        "OrganisationStatus": organisation.status,
        "FinancialYearEndDay": day,
        "FinancialYearEndMonth": month,
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": ms_date(organisation.created_at),
        "Timezone": organisation.timezone,
        "OrganisationEntityType": "COMPANY",
        "ShortCode": organisation.short_code,
        "Class": "PREMIUM" if organisation.multi_currency else "STANDARD",
        "Edition": organisation.edition,
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }


# ----------------------------------------------------------------------------- currencies

#: ISO 4217 names (from the iso-codes project), Xero's "United States Dollar" for USD.
CURRENCY_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "AED": "UAE Dirham", "AFN": "Afghani", "ALL": "Lek", "AMD": "Armenian Dram",
        "AOA": "Kwanza", "ARS": "Argentine Peso", "AUD": "Australian Dollar",
        "AWG": "Aruban Florin", "AZN": "Azerbaijan Manat", "BAM": "Convertible Mark",
        "BBD": "Barbados Dollar", "BDT": "Taka", "BHD": "Bahraini Dinar", "BIF": "Burundi Franc",
        "BMD": "Bermudian Dollar", "BND": "Brunei Dollar", "BOB": "Boliviano",
        "BRL": "Brazilian Real", "BSD": "Bahamian Dollar", "BTN": "Ngultrum", "BWP": "Pula",
        "BYN": "Belarusian Ruble", "BZD": "Belize Dollar", "CAD": "Canadian Dollar",
        "CDF": "Congolese Franc", "CHF": "Swiss Franc", "CLP": "Chilean Peso",
        "CNY": "Yuan Renminbi", "COP": "Colombian Peso", "CRC": "Costa Rican Colon",
        "CUP": "Cuban Peso", "CVE": "Cabo Verde Escudo", "CZK": "Czech Koruna",
        "DJF": "Djibouti Franc", "DKK": "Danish Krone", "DOP": "Dominican Peso",
        "DZD": "Algerian Dinar", "EGP": "Egyptian Pound", "ERN": "Nakfa", "ETB": "Ethiopian Birr",
        "EUR": "Euro", "FJD": "Fiji Dollar", "FKP": "Falkland Islands Pound",
        "GBP": "Pound Sterling", "GEL": "Lari", "GHS": "Ghana Cedi", "GIP": "Gibraltar Pound",
        "GMD": "Dalasi", "GNF": "Guinean Franc", "GTQ": "Quetzal", "GYD": "Guyana Dollar",
        "HKD": "Hong Kong Dollar", "HNL": "Lempira", "HTG": "Gourde", "HUF": "Forint",
        "IDR": "Rupiah", "ILS": "New Israeli Sheqel", "INR": "Indian Rupee", "IQD": "Iraqi Dinar",
        "IRR": "Iranian Rial", "ISK": "Iceland Krona", "JMD": "Jamaican Dollar",
        "JOD": "Jordanian Dinar", "JPY": "Yen", "KES": "Kenyan Shilling", "KGS": "Som",
        "KHR": "Riel", "KMF": "Comorian Franc", "KPW": "North Korean Won", "KRW": "Won",
        "KWD": "Kuwaiti Dinar", "KYD": "Cayman Islands Dollar", "KZT": "Tenge", "LAK": "Lao Kip",
        "LBP": "Lebanese Pound", "LKR": "Sri Lanka Rupee", "LRD": "Liberian Dollar", "LSL": "Loti",
        "LYD": "Libyan Dinar", "MAD": "Moroccan Dirham", "MDL": "Moldovan Leu",
        "MGA": "Malagasy Ariary", "MKD": "Denar", "MMK": "Kyat", "MNT": "Tugrik", "MOP": "Pataca",
        "MRU": "Ouguiya", "MUR": "Mauritius Rupee", "MVR": "Rufiyaa", "MWK": "Malawi Kwacha",
        "MXN": "Mexican Peso", "MYR": "Malaysian Ringgit", "MZN": "Mozambique Metical",
        "NAD": "Namibia Dollar", "NGN": "Naira", "NIO": "Cordoba Oro", "NOK": "Norwegian Krone",
        "NPR": "Nepalese Rupee", "NZD": "New Zealand Dollar", "OMR": "Rial Omani", "PAB": "Balboa",
        "PEN": "Sol", "PGK": "Kina", "PHP": "Philippine Peso", "PKR": "Pakistan Rupee",
        "PLN": "Zloty", "PYG": "Guarani", "QAR": "Qatari Rial", "RON": "Romanian Leu",
        "RSD": "Serbian Dinar", "RUB": "Russian Ruble", "RWF": "Rwanda Franc",
        "SAR": "Saudi Riyal", "SBD": "Solomon Islands Dollar", "SCR": "Seychelles Rupee",
        "SDG": "Sudanese Pound", "SEK": "Swedish Krona", "SGD": "Singapore Dollar",
        "SHP": "Saint Helena Pound", "SLE": "Leone", "SOS": "Somali Shilling",
        "SRD": "Surinam Dollar", "SSP": "South Sudanese Pound", "STN": "Dobra",
        "SVC": "El Salvador Colon", "SYP": "Syrian Pound", "SZL": "Lilangeni", "THB": "Baht",
        "TJS": "Somoni", "TMT": "Turkmenistan New Manat", "TND": "Tunisian Dinar",
        "TOP": "Pa'anga", "TRY": "Turkish Lira", "TTD": "Trinidad and Tobago Dollar",
        "TWD": "New Taiwan Dollar", "TZS": "Tanzanian Shilling", "UAH": "Hryvnia",
        "UGX": "Uganda Shilling", "USD": "United States Dollar", "UYU": "Peso Uruguayo",
        "UZS": "Uzbekistan Sum", "VED": "Bolívar Soberano", "VES": "Bolívar Soberano",
        "VND": "Dong", "VUV": "Vatu", "WST": "Tala", "XAF": "CFA Franc BEAC",
        "XCD": "East Caribbean Dollar", "XCG": "Caribbean Guilder", "XOF": "CFA Franc BCEAO",
        "XPF": "CFP Franc", "YER": "Yemeni Rial", "ZAR": "Rand", "ZMW": "Zambian Kwacha",
        "ZWG": "Zimbabwe Gold",
    }
)  # fmt: skip

CURRENCY_FIELDS = Fields("Currency", {"Code": "enum", "Description": "string"})


def currency_document(code: str) -> dict[str, str]:
    return {"Code": code, "Description": CURRENCY_NAMES.get(code, code)}


def add_currency(organisation: Organisation, raw: Any) -> str:
    """`PUT /Currencies`: the organisation holds one more currency (a no-op when it holds it)."""
    code = _upper(canonical(raw, ("Code", "Description")).get("Code"))
    if code is None:
        raise Refusal(['A currency Code must be given, e.g. {"Code": "EUR"}.'])
    if code not in CURRENCY_NAMES:
        raise Refusal([f"'{code}' is not a valid currency code."])
    if code in organisation.currencies:
        return code
    if not organisation.multi_currency:
        raise Refusal(
            [
                f"Organisation is not subscribed to multi-currency, so it cannot add {code}: "
                f"it trades in its base currency ({organisation.base_currency}) only."
            ]
        )
    organisation.currencies.append(code)
    return code


# ----------------------------------------------------------------------------- accounts

ACCOUNT_PROPERTIES = (
    "Code", "Name", "AccountID", "Type", "BankAccountNumber", "Status", "Description",
    "BankAccountType", "CurrencyCode", "TaxType", "EnablePaymentsToAccount",
    "ShowInExpenseClaims", "Class", "SystemAccount", "ReportingCode", "ReportingCodeName",
    "HasAttachments", "UpdatedDateUTC", "AddToWatchlist",
)  # fmt: skip
ACCOUNT_CLASSES: Mapping[str, str] = MappingProxyType(
    {
        "BANK": "ASSET", "CURRENT": "ASSET", "CURRLIAB": "LIABILITY", "DEPRECIATN": "EXPENSE",
        "DIRECTCOSTS": "EXPENSE", "EQUITY": "EQUITY", "EXPENSE": "EXPENSE", "FIXED": "ASSET",
        "INVENTORY": "ASSET", "LIABILITY": "LIABILITY", "NONCURRENT": "ASSET",
        "OTHERINCOME": "REVENUE", "OVERHEADS": "EXPENSE", "PREPAYMENT": "ASSET",
        "REVENUE": "REVENUE", "SALES": "REVENUE", "TERMLIAB": "LIABILITY", "PAYG": "LIABILITY",
    }
)  # fmt: skip
_REPORTING = {
    "ASSET": ("ASS", "Assets"), "EQUITY": ("EQU", "Equity"), "EXPENSE": ("EXP", "Expense"),
    "LIABILITY": ("LIA", "Liabilities"), "REVENUE": ("REV", "Revenue"),
}  # fmt: skip
BANK_ACCOUNT_TYPES = ("BANK", "CREDITCARD", "PAYPAL")
MAX_ACCOUNT_CODE = 10
MAX_ACCOUNT_NAME = 150
ACCOUNT_FIELDS = Fields(
    "Account",
    {
        "AccountID": "guid", "Code": "string", "Name": "string", "Type": "enum",
        "BankAccountNumber": "string", "Status": "enum", "Description": "string",
        "BankAccountType": "enum", "CurrencyCode": "enum", "TaxType": "string",
        "EnablePaymentsToAccount": "bool", "ShowInExpenseClaims": "bool", "Class": "enum",
        "SystemAccount": "enum", "ReportingCode": "string", "ReportingCodeName": "string",
        "HasAttachments": "bool", "UpdatedDateUTC": "datetime", "AddToWatchlist": "bool",
    },
)  # fmt: skip


def account_document(account: Account, organisation: Organisation) -> dict[str, Any]:
    """An account as `GET /Accounts` shows it; bank details and currency on BANK only."""
    document: dict[str, Any] = {"AccountID": account.account_id}
    if account.code:
        document["Code"] = account.code
    document |= {
        "Name": account.name,
        "Status": account.status,
        "Type": account.type,
        "TaxType": account.tax_type,
    }
    if account.description:
        document["Description"] = account.description
    document |= {
        "Class": account.account_class,
        "EnablePaymentsToAccount": account.enable_payments_to_account,
        "ShowInExpenseClaims": account.show_in_expense_claims,
        "BankAccountType": account.bank_account_type or "",
    }
    if account.type == "BANK":
        if account.bank_account_number:
            document["BankAccountNumber"] = account.bank_account_number
        document["CurrencyCode"] = account.currency_code or organisation.base_currency
    if account.account_class in _REPORTING:
        code, name = _REPORTING[account.account_class]
        document |= {"ReportingCode": code, "ReportingCodeName": name}
    return document | {
        "HasAttachments": False,
        "UpdatedDateUTC": ms_date_utc(updated_at(account, organisation)),
        "AddToWatchlist": account.add_to_watchlist,
    }


def account_row(account: Account, organisation: Organisation) -> Row:
    return account_document(account, organisation) | {
        "UpdatedDateUTC": updated_at(account, organisation)
    }


def updated_at(account: Account, organisation: Organisation) -> datetime:
    return account.updated_at or organisation.created_at


def visible_accounts(organisation: Organisation) -> list[Account]:
    """The chart as the API shows it: DELETED accounts are gone."""
    return [a for a in organisation.accounts.values() if a.status != "DELETED"]


def find_account(organisation: Organisation, account_id: str) -> Account | None:
    account = organisation.accounts.get(account_id.lower())
    return account if account is not None and account.status != "DELETED" else None


def create_account(organisation: Organisation, raw: Any, now: datetime) -> Account:
    """`PUT /Accounts`: one new account, or a Refusal naming every problem."""
    fields = canonical(raw, ACCOUNT_PROPERTIES)
    errors = _account_errors(organisation, fields, None)
    if errors:
        raise Refusal(errors, element=fields | {"AccountID": ZERO_GUID})
    type_ = str(_upper(fields["Type"]))
    account = Account(
        account_id=new_id(),
        name=str(_text(fields["Name"])),
        type=type_,
        account_class=ACCOUNT_CLASSES[type_],
        code=_text(fields.get("Code")),
        tax_type=_text(fields.get("TaxType")) or "NONE",
        updated_at=now,
    )
    if type_ == "BANK":
        account.currency_code = _upper(fields.get("CurrencyCode")) or organisation.base_currency
        account.bank_account_type = "BANK"
    _apply_account_fields(account, fields)
    organisation.accounts[account.account_id] = account
    return account


def update_account(organisation: Organisation, account: Account, raw: Any, now: datetime) -> None:
    """`POST /Accounts/{AccountID}`: the members given change; the others stay."""
    fields = canonical(raw, ACCOUNT_PROPERTIES)
    errors = _account_errors(organisation, fields, account)
    if errors:
        raise Refusal(errors, element=fields | {"AccountID": account.account_id})
    if "Type" in fields:
        account.type = str(_upper(fields["Type"]))
        account.account_class = ACCOUNT_CLASSES[account.type]
    for member, attribute in (("Name", "name"), ("Code", "code"), ("TaxType", "tax_type")):
        if member in fields:
            setattr(account, attribute, _text(fields[member]) or getattr(account, attribute))
    if "Status" in fields:
        account.status = "ARCHIVED" if _upper(fields["Status"]) == "ARCHIVED" else "ACTIVE"
    _apply_account_fields(account, fields)
    account.updated_at = now


def delete_account(organisation: Organisation, account: Account, now: datetime) -> None:
    """`DELETE /Accounts/{AccountID}`: refused while any transaction uses the account."""
    if account_in_use(organisation, account):
        raise Refusal(
            [
                "This account cannot be deleted as it has transactions against it. "
                "Archive it instead."
            ],
            element=account_document(account, organisation),
        )
    account.status = "DELETED"
    account.updated_at = now


def account_in_use(organisation: Organisation, account: Account) -> bool:
    for transaction in organisation.bank_transactions.values():
        if transaction.bank_account_id == account.account_id:
            return True
        lines = transaction.document.get("LineItems", [])
        if any(line.get("AccountID") == account.account_id for line in lines):
            return True
    return False


def _apply_account_fields(account: Account, fields: Mapping[str, Any]) -> None:
    """Members a create and an update treat alike."""
    if account.type == "BANK":
        account.bank_account_number = _text(fields.get("BankAccountNumber")) or (
            account.bank_account_number
        )
        account.bank_account_type = _upper(fields.get("BankAccountType")) or (
            account.bank_account_type
        )
    elif "Description" in fields:  # bank accounts have none (spec)
        account.description = _text(fields["Description"])
    for member, attribute in (
        ("EnablePaymentsToAccount", "enable_payments_to_account"),
        ("ShowInExpenseClaims", "show_in_expense_claims"),
        ("AddToWatchlist", "add_to_watchlist"),
    ):
        setattr(account, attribute, _flag(fields.get(member), getattr(account, attribute)))


def _account_errors(
    organisation: Organisation, fields: Mapping[str, Any], current: Account | None
) -> list[str]:
    if "Type" in fields or current is None:
        type_ = _upper(fields.get("Type"))
        if type_ not in ACCOUNT_CLASSES:
            return [
                "A valid account Type must be given: one of " + ", ".join(ACCOUNT_CLASSES) + "."
            ]
    else:
        type_ = current.type
    errors = _name_errors(organisation, fields, current)
    errors += _code_errors(organisation, fields, current, bank=type_ == "BANK")
    if current is not None:
        errors += _change_errors(current, fields, type_)
    if type_ == "BANK":
        errors += _bank_errors(organisation, fields, current)
    return errors


def _name_errors(
    organisation: Organisation, fields: Mapping[str, Any], current: Account | None
) -> list[str]:
    if current is not None and "Name" not in fields:
        return []
    name = _text(fields.get("Name"))
    if name is None:
        return ["Please enter a Name."]
    if len(name) > MAX_ACCOUNT_NAME:
        return [f"Account Name is too long. Maximum of {MAX_ACCOUNT_NAME} characters allowed"]
    if _taken(organisation, "name", name, current):
        return ["Please enter a unique Name."]
    return []


def _code_errors(
    organisation: Organisation, fields: Mapping[str, Any], current: Account | None, *, bank: bool
) -> list[str]:
    if current is not None and "Code" not in fields:
        return []
    code = _text(fields.get("Code"))
    if code is None:
        return [] if bank else ["Please enter a Code."]  # bank accounts may go without
    if len(code) > MAX_ACCOUNT_CODE:
        return [f"Account Code is too long. Maximum of {MAX_ACCOUNT_CODE} characters allowed"]
    if _taken(organisation, "code", code, current):
        return ["Please enter a unique Code."]
    return []


def _taken(organisation: Organisation, attribute: str, value: str, current: Account | None) -> bool:
    wanted = value.casefold()
    return any(
        account is not current and (getattr(account, attribute) or "").casefold() == wanted
        for account in visible_accounts(organisation)
    )


def _change_errors(current: Account, fields: Mapping[str, Any], type_: str | None) -> list[str]:
    errors = []
    if type_ != current.type and "BANK" in {type_, current.type}:
        errors.append("A bank account's Type cannot be changed, nor can an account become one.")
    status = _upper(fields.get("Status"))
    if "Status" in fields and status not in {"ACTIVE", "ARCHIVED"}:
        errors.append(
            f"The Status '{status}' cannot be set on an account: use ACTIVE or ARCHIVED "
            "(DELETE /Accounts/{AccountID} deletes one)."
        )
    return errors


def _bank_errors(
    organisation: Organisation, fields: Mapping[str, Any], current: Account | None
) -> list[str]:
    errors = []
    number = _text(fields.get("BankAccountNumber"))
    if number is None and (current is None or "BankAccountNumber" in fields):
        errors.append("Please enter a valid Bank Account Number.")
    kind = _upper(fields.get("BankAccountType"))
    if kind is not None and kind not in BANK_ACCOUNT_TYPES:
        errors.append(f"'{kind}' is not a BankAccountType: use BANK, CREDITCARD or PAYPAL.")
    code = _upper(fields.get("CurrencyCode"))
    if code is None:
        return errors
    if code not in CURRENCY_NAMES:
        errors.append(f"'{code}' is not a valid currency code.")
    elif current is not None and code != (current.currency_code or organisation.base_currency):
        errors.append("The currency of a bank account cannot be changed.")
    elif code not in organisation.currencies:
        errors.append(f"The currency code '{code}' is not subscribed to by this organisation.")
    return errors


# ----------------------------------------------------------------------------- contacts


def find_contact(
    organisation: Organisation, *, number: str | None = None, name: str | None = None
) -> Contact | None:
    """A contact by ContactNumber, else by Name, ignoring case."""
    for contact in organisation.contacts.values():
        if number and (contact.contact_number or "").casefold() == number.casefold():
            return contact
    for contact in organisation.contacts.values():
        if name and contact.name.casefold() == name.casefold():
            return contact
    return None


# ----------------------------------------------------------------------------- bank transactions

BANK_TRANSACTION_PROPERTIES = (
    "Type", "Contact", "LineItems", "BankAccount", "IsReconciled", "Date", "Reference",
    "CurrencyCode", "CurrencyRate", "Url", "Status", "LineAmountTypes", "SubTotal",
    "TotalTax", "Total", "BankTransactionID", "PrepaymentID", "OverpaymentID",
    "UpdatedDateUTC", "HasAttachments",
)  # fmt: skip
LINE_ITEM_PROPERTIES = (
    "LineItemID", "Description", "Quantity", "UnitAmount", "ItemCode", "AccountCode",
    "AccountID", "TaxType", "TaxAmount", "LineAmount", "Tracking", "DiscountRate",
    "DiscountAmount",
)  # fmt: skip
CONTACT_REFERENCE = ("ContactID", "ContactNumber", "Name")
ACCOUNT_REFERENCE = ("AccountID", "Code", "Name")
SUPPORTED_TYPES = ("RECEIVE", "SPEND")
OTHER_TYPES = (
    "RECEIVE-OVERPAYMENT", "RECEIVE-PREPAYMENT", "SPEND-OVERPAYMENT", "SPEND-PREPAYMENT",
    "RECEIVE-TRANSFER", "SPEND-TRANSFER",
)  # fmt: skip
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
MAX_CONTACT_NAME = 255
BANK_TRANSACTION_FIELDS = Fields(
    "BankTransaction",
    {
        "BankTransactionID": "guid", "Type": "enum", "Contact.ContactID": "guid",
        "Contact.Name": "string", "Contact.ContactNumber": "string",
        "BankAccount.AccountID": "guid", "BankAccount.Code": "string",
        "BankAccount.Name": "string", "IsReconciled": "bool", "Date": "date",
        "Reference": "string", "CurrencyCode": "enum", "CurrencyRate": "number",
        "Url": "string", "Status": "enum", "LineAmountTypes": "enum", "SubTotal": "number",
        "TotalTax": "number", "Total": "number", "UpdatedDateUTC": "datetime",
        "HasAttachments": "bool", "PrepaymentID": "guid", "OverpaymentID": "guid",
    },
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    line_item_id: str
    description: str | None
    quantity: Decimal
    unit_amount: Decimal
    account: Account
    tax_type: str
    tax_amount: Decimal
    line_amount: Decimal


@dataclass(frozen=True)
class ContactChoice:
    """The transaction's contact: an existing one, or one to create from its name."""

    existing: Contact | None
    name: str | None = None
    number: str | None = None


@dataclass(frozen=True)
class BankTransactionPlan:
    """A valid element, ready to save (nothing is saved until every element is planned)."""

    existing: BankTransaction | None
    type: str
    contact: ContactChoice
    bank_account: Account
    day: date
    reference: str | None
    currency: str
    rate: Decimal
    line_amount_types: str
    lines: tuple[Line, ...]
    is_reconciled: bool
    url: str | None


@dataclass(frozen=True)
class Deletion:
    """`{"BankTransactionID": …, "Status": "DELETED"}`: how Xero deletes a bank transaction."""

    existing: BankTransaction


@dataclass(frozen=True)
class Refused:
    """An element Xero refuses, echoed back with its validation errors."""

    element: dict[str, Any]
    messages: list[str]


Outcome = BankTransactionPlan | Deletion | Refused


def plan_bank_transaction(
    organisation: Organisation,
    raw: Any,
    *,
    may_update: bool,
    today: date,
    unit_dp: int,
    forced_id: str | None = None,
) -> Outcome:
    """Check one element of `PUT`/`POST /BankTransactions` against the books, saving nothing.

    With a BankTransactionID (POST only) the element updates that transaction: the members
    it gives replace the stored ones (LineItems as a whole; an empty list keeps them)."""
    element = canonical(raw, BANK_TRANSACTION_PROPERTIES)
    if forced_id is not None:
        element["BankTransactionID"] = forced_id
    echo = _echo(element)
    existing, problem = _existing(organisation, element, may_update=may_update)
    if problem is not None:
        return Refused(echo, [problem])
    known_lines: set[str] = set()
    if existing is not None:
        if _upper(element.get("Status")) == "DELETED":
            return Deletion(existing)
        if existing.status == "DELETED":
            return Refused(echo, ["A deleted bank transaction cannot be edited."])
        if not element.get("LineItems"):
            element.pop("LineItems", None)
            unit_dp = 4  # the stored lines, read back exactly as they were kept
        element = as_input(existing.document) | element
        known_lines = {line["LineItemID"] for line in existing.document["LineItems"]}
    reader = _Reader(organisation, element, today=today, unit_dp=unit_dp, known_lines=known_lines)
    plan = reader.plan(existing)
    return plan if plan is not None else Refused(echo, reader.errors)


def save_bank_transaction(
    organisation: Organisation, outcome: BankTransactionPlan | Deletion, now: datetime
) -> BankTransaction:
    """Keep a planned element: the transaction as `GET /BankTransactions/{id}` will show it."""
    if isinstance(outcome, Deletion):
        transaction = outcome.existing
        transaction.status = "DELETED"
        transaction.updated_at = now
        transaction.document = transaction.document | {
            "Status": "DELETED",
            "UpdatedDateUTC": ms_date_utc(now),
        }
        return transaction
    contact = _contact_for(organisation, outcome.contact, now)
    existing = outcome.existing
    transaction_id = existing.bank_transaction_id if existing is not None else new_id()
    transaction = BankTransaction(
        bank_transaction_id=transaction_id,
        bank_account_id=outcome.bank_account.account_id,
        reference=outcome.reference,
        date=outcome.day,
        status="AUTHORISED",
        updated_at=now,
        document=_document(transaction_id, outcome, contact, now),
    )
    organisation.bank_transactions[transaction_id] = transaction
    return transaction


def bank_transaction_view(transaction: BankTransaction, unit_dp: int) -> dict[str, Any]:
    """The stored document with unit amounts to 2 decimals, or 4 with `unitdp=4` (Xero)."""
    step = Decimal(1).scaleb(-unit_dp)
    lines = [
        line | {"UnitAmount": line["UnitAmount"].quantize(step, ROUND_HALF_UP)}
        for line in transaction.document["LineItems"]
    ]
    return transaction.document | {"LineItems": lines}


def bank_transaction_row(transaction: BankTransaction) -> Row:
    document = transaction.document
    contact, bank = document["Contact"], document["BankAccount"]
    return document | {
        "Contact.ContactID": contact.get("ContactID"),
        "Contact.Name": contact.get("Name"),
        "Contact.ContactNumber": contact.get("ContactNumber"),
        "BankAccount.AccountID": bank.get("AccountID"),
        "BankAccount.Code": bank.get("Code"),
        "BankAccount.Name": bank.get("Name"),
        "Date": transaction.date,
        "UpdatedDateUTC": transaction.updated_at,
    }


def as_input(document: Mapping[str, Any]) -> dict[str, Any]:
    """A stored transaction as the element that would make it again (the base of an update)."""
    element = {
        key: document[key]
        for key in ("Type", "Reference", "CurrencyCode", "CurrencyRate", "LineAmountTypes",
                    "IsReconciled", "Url")
        if key in document
    }  # fmt: skip
    lines = [
        {key: line[key] for key in LINE_ITEM_PROPERTIES if key in line and key != "AccountCode"}
        for line in document["LineItems"]
    ]
    return element | {
        "Contact": {"ContactID": document["Contact"]["ContactID"]},
        "BankAccount": {"AccountID": document["BankAccount"]["AccountID"]},
        "Date": _day_of(document["Date"]).isoformat(),
        "LineItems": lines,
    }


def _day_of(ms: str) -> date:
    parsed = parse_day(ms)
    if parsed is None:  # pragma: no cover - documents are written by _document
        raise ValueError(f"not a document date: {ms!r}")
    return parsed


def _existing(
    organisation: Organisation, element: Mapping[str, Any], *, may_update: bool
) -> tuple[BankTransaction | None, str | None]:
    wanted = guid(element.get("BankTransactionID"))
    if wanted is None:
        return None, None
    if not may_update:
        return None, "PUT creates bank transactions; POST updates one by its BankTransactionID."
    found = organisation.bank_transactions.get(wanted)
    if found is None:
        return (
            None,
            "An existing BankTransaction with the specified BankTransactionID could not be found.",
        )
    return found, None


def _echo(element: Mapping[str, Any]) -> dict[str, Any]:
    """The element as Xero names it back in a refusal: its known members only."""
    echoed = dict(element)
    if isinstance(element.get("Contact"), Mapping):
        echoed["Contact"] = canonical(element["Contact"], CONTACT_REFERENCE)
    if isinstance(element.get("BankAccount"), Mapping):
        echoed["BankAccount"] = canonical(element["BankAccount"], ACCOUNT_REFERENCE)
    if isinstance(element.get("LineItems"), list):
        echoed["LineItems"] = [
            canonical(line, LINE_ITEM_PROPERTIES) for line in element["LineItems"]
        ]
    return echoed


class _Reader:
    """Reads one element, collecting every validation error as Xero lists them all."""

    def __init__(
        self,
        organisation: Organisation,
        element: Mapping[str, Any],
        *,
        today: date,
        unit_dp: int,
        known_lines: set[str],
    ) -> None:
        self.organisation = organisation
        self.element = element
        self.today = today
        self.unit_step = Decimal(1).scaleb(-unit_dp)
        self.known_lines = known_lines
        self.errors: list[str] = []

    def plan(self, existing: BankTransaction | None) -> BankTransactionPlan | None:
        type_ = self.type()
        bank = self.bank_account()
        currency = self.currency(bank)
        contact = self.contact()
        day = self.day()
        reference = self.reference()
        amount_types = self.line_amount_types()
        lines = self.lines(amount_types)
        rate = self.rate(currency)
        self.status()
        if lines and totals(amount_types, lines)[2] < 0:
            self.errors.append("The total of a bank transaction must not be negative.")
        if self.errors or type_ is None or bank is None or currency is None:
            return None
        if contact is None or day is None:  # pragma: no cover - each comes with an error
            return None
        return BankTransactionPlan(
            existing=existing,
            type=type_,
            contact=contact,
            bank_account=bank,
            day=day,
            reference=reference,
            currency=currency,
            rate=rate,
            line_amount_types=amount_types,
            lines=lines,
            is_reconciled=_flag(self.element.get("IsReconciled"), default=False),
            url=_text(self.element.get("Url")),
        )

    def type(self) -> str | None:
        value = _upper(self.element.get("Type"))
        if value in SUPPORTED_TYPES:
            return value
        if value in OTHER_TYPES:
            self.errors.append(
                f"The sandbox supports RECEIVE and SPEND bank transactions only, not {value}."
            )
        else:
            self.errors.append("A bank transaction's Type must be RECEIVE or SPEND.")
        return None

    def bank_account(self) -> Account | None:
        given = canonical(self.element.get("BankAccount"), ACCOUNT_REFERENCE)
        account_id, code = guid(given.get("AccountID")), _text(given.get("Code"))
        if account_id is None and code is None:
            self.errors.append("A BankAccount must be given, by its AccountID or Code.")
            return None
        account = (
            self.organisation.accounts.get(account_id)
            if account_id is not None
            else _account_by_code(self.organisation, str(code))
        )
        if account is None or account.status == "DELETED" or account.type != "BANK":
            self.errors.append(
                "The specified bank account details do not match a known bank account"
            )
            return None
        if account.status != "ACTIVE":
            self.errors.append(
                f"The bank account '{account.name}' is archived: restore it before adding "
                "transactions to it."
            )
            return None
        return account

    def currency(self, bank: Account | None) -> str | None:
        if bank is None:
            return None
        held = bank.currency_code or self.organisation.base_currency
        given = _upper(self.element.get("CurrencyCode"))
        if given is not None and given != held:
            self.errors.append(
                f"The CurrencyCode '{given}' does not match the currency of the bank account "
                f"({held})."
            )
        return held

    def contact(self) -> ContactChoice | None:
        given = canonical(self.element.get("Contact"), CONTACT_REFERENCE)
        contact_id = guid(given.get("ContactID"))
        number, name = _text(given.get("ContactNumber")), _text(given.get("Name"))
        if contact_id is not None:
            found = self.organisation.contacts.get(contact_id)
            if found is None:
                self.errors.append(f"The Contact with ContactID '{contact_id}' could not be found.")
            return ContactChoice(found) if found is not None else None
        found = find_contact(self.organisation, number=number, name=name)
        if found is not None:
            return ContactChoice(found)
        return self.new_contact(number, name)

    def new_contact(self, number: str | None, name: str | None) -> ContactChoice | None:
        if name is None:
            self.errors.append(
                "The Contact must contain at least 1 of the following elements to identify "
                "the contact: Name, ContactID, ContactNumber"
                if number is None
                else f"No contact has the ContactNumber '{number}': give a Name to create one."
            )
            return None
        if len(name) > MAX_CONTACT_NAME:
            self.errors.append(
                f"The contact Name is too long. Maximum of {MAX_CONTACT_NAME} characters allowed"
            )
            return None
        return ContactChoice(None, name=name, number=number)

    def day(self) -> date | None:
        value = self.element.get("Date")
        if value is None or value == "":
            return self.today  # Xero dates an undated transaction today
        parsed = parse_day(value)
        if parsed is None:
            self.errors.append(f"The Date '{value}' is not a valid date: use YYYY-MM-DD.")
        return parsed

    def reference(self) -> str | None:
        value = self.element.get("Reference")
        if value is None:
            return None
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_REFERENCE:
            self.errors.append(
                f"Reference is too long. Maximum of {MAX_REFERENCE} characters allowed"
            )
        return text

    def line_amount_types(self) -> str:
        value = self.element.get("LineAmountTypes")
        if value is None or value == "":
            return "Exclusive"  # Xero's default (spec)
        found = next((t for t in LINE_AMOUNT_TYPES if t.casefold() == str(value).casefold()), None)
        if found is None:
            self.errors.append(
                f"'{value}' is not a LineAmountTypes: use Exclusive, Inclusive or NoTax."
            )
        return found or "Exclusive"

    def lines(self, amount_types: str) -> tuple[Line, ...]:
        given = self.element.get("LineItems")
        if not isinstance(given, list) or not given:
            self.errors.append("A bank transaction needs at least one line item.")
            return ()
        lines = [self.line(canonical(item, LINE_ITEM_PROPERTIES), amount_types) for item in given]
        return tuple(line for line in lines if line is not None)

    def line(self, item: Mapping[str, Any], amount_types: str) -> Line | None:
        account = self.line_account(item)
        amounts = self.line_amounts(item)
        tax_type, tax = self.line_tax(item, account, amount_types)
        if account is None or amounts is None:
            return None
        line_id = guid(item.get("LineItemID"))
        description = item.get("Description")
        return Line(
            line_item_id=line_id if line_id in self.known_lines else new_id(),
            description=description if isinstance(description, str) and description else None,
            quantity=amounts[0],
            unit_amount=amounts[1],
            account=account,
            tax_type=tax_type,
            tax_amount=tax,
            line_amount=amounts[2],
        )

    def line_account(self, item: Mapping[str, Any]) -> Account | None:
        account_id, code = guid(item.get("AccountID")), _text(item.get("AccountCode"))
        if account_id is None and code is None:
            self.errors.append("Account code or ID must be specified.")
            return None
        account = (
            self.organisation.accounts.get(account_id)
            if account_id is not None
            else _account_by_code(self.organisation, str(code))
        )
        shown = code or account_id
        if account is None or account.type == "BANK":
            self.errors.append(f"Account code '{shown}' is not a valid code for this document.")
            return None
        if account.status != "ACTIVE":
            self.errors.append(
                f"Account code '{shown}' has been archived, or has been deleted. Each line item "
                "must reference a valid account."
            )
            return None
        return account

    def line_amounts(self, item: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal] | None:
        """(Quantity, UnitAmount, LineAmount): Quantity defaults to 1; a LineAmount without
        a UnitAmount gives it (spec); both given must agree."""
        try:
            quantity = _optional(item.get("Quantity"), Decimal(1)).quantize(QUANTITY_STEP)
            unit = _optional(item.get("UnitAmount"), None)
            amount = _optional(item.get("LineAmount"), None)
        except ValueError:
            self.errors.append("Quantity, UnitAmount and LineAmount must be numbers.")
            return None
        if quantity < 0:
            self.errors.append(
                f"The quantity value '{quantity}' is invalid. Quantity must not be less than zero."
            )
            return None
        if unit is not None:
            return self.priced_line(quantity, unit.quantize(self.unit_step, ROUND_HALF_UP), amount)
        if amount is None:
            self.errors.append("A line item needs a UnitAmount or a LineAmount.")
            return None
        if quantity == 0:
            self.errors.append("A line item with a LineAmount needs a Quantity above zero.")
            return None
        amount = money(amount)
        return quantity, (amount / quantity).quantize(self.unit_step, ROUND_HALF_UP), amount

    def priced_line(
        self, quantity: Decimal, unit: Decimal, amount: Decimal | None
    ) -> tuple[Decimal, Decimal, Decimal] | None:
        computed = money(quantity * unit)
        if amount is not None and money(amount) != computed:
            self.errors.append(
                f"The LineAmount {amount} does not equal Quantity x UnitAmount ({computed})."
            )
            return None
        return quantity, unit, computed

    def line_tax(
        self, item: Mapping[str, Any], account: Account | None, amount_types: str
    ) -> tuple[str, Decimal]:
        if amount_types == "NoTax":
            return "NONE", Decimal("0.00")
        tax_type = _text(item.get("TaxType")) or (account.tax_type if account else "NONE")
        try:
            return tax_type, money(_optional(item.get("TaxAmount"), Decimal(0)))
        except ValueError:
            self.errors.append("TaxAmount must be a number.")
            return tax_type, Decimal("0.00")

    def rate(self, currency: str | None) -> Decimal:
        value = self.element.get("CurrencyRate")
        if currency in {None, self.organisation.base_currency} or value is None:
            return Decimal(1).quantize(RATE_STEP)  # the sandbox has no exchange rates
        try:
            rate = decimal(value)
        except ValueError:
            rate = Decimal(0)
        if rate <= 0:
            self.errors.append("CurrencyRate must be a number above zero.")
        return rate.quantize(RATE_STEP)

    def status(self) -> None:
        value = _upper(self.element.get("Status"))
        if value not in {None, "AUTHORISED"}:
            self.errors.append(
                f"The Status '{value}' cannot be set here: bank transactions are AUTHORISED "
                "(POST Status DELETED with a BankTransactionID deletes one)."
            )


def totals(amount_types: str, lines: Iterable[Line]) -> tuple[Decimal, Decimal, Decimal]:
    """(SubTotal, TotalTax, Total): Inclusive lines hold their tax, Exclusive ones add it."""
    lines = list(lines)
    line_sum = sum((line.line_amount for line in lines), Decimal("0.00"))
    tax = sum((line.tax_amount for line in lines), Decimal("0.00"))
    if amount_types == "Inclusive":
        return line_sum - tax, tax, line_sum
    return line_sum, tax, line_sum + tax


def _optional(value: Any, default: Decimal | None) -> Any:
    return default if value is None else decimal(value)


def _account_by_code(organisation: Organisation, code: str) -> Account | None:
    """An account by its code, ignoring case; a live one before a deleted one."""
    matches = [
        account
        for account in organisation.accounts.values()
        if (account.code or "").casefold() == code.casefold()
    ]
    matches.sort(key=lambda account: account.status == "DELETED")
    return matches[0] if matches else None


def _contact_for(organisation: Organisation, choice: ContactChoice, now: datetime) -> Contact:
    """The chosen contact; a new one is made once, even when several elements name it."""
    if choice.existing is not None:
        return choice.existing
    found = find_contact(organisation, number=choice.number, name=choice.name)
    if found is not None:
        return found
    contact = Contact(
        contact_id=new_id(), name=str(choice.name), updated_at=now, contact_number=choice.number
    )
    organisation.contacts[contact.contact_id] = contact
    return contact


def _document(
    transaction_id: str, plan: BankTransactionPlan, contact: Contact, now: datetime
) -> dict[str, Any]:
    bank = plan.bank_account
    bank_reference = {"AccountID": bank.account_id, "Name": bank.name}
    if bank.code:
        bank_reference["Code"] = bank.code
    contact_reference = {"ContactID": contact.contact_id, "Name": contact.name}
    if contact.contact_number:
        contact_reference["ContactNumber"] = contact.contact_number
    sub_total, total_tax, total = totals(plan.line_amount_types, plan.lines)
    document: dict[str, Any] = {
        "BankTransactionID": transaction_id,
        "BankAccount": bank_reference,
        "Type": plan.type,
        "IsReconciled": plan.is_reconciled,
        "CurrencyRate": plan.rate,
        "Contact": contact_reference,
        "Date": ms_day(plan.day),
        "Status": "AUTHORISED",
        "LineAmountTypes": plan.line_amount_types,
        "LineItems": [_line_document(line) for line in plan.lines],
        "SubTotal": sub_total,
        "TotalTax": total_tax,
        "Total": total,
        "UpdatedDateUTC": ms_date_utc(now),
        "CurrencyCode": plan.currency,
        "HasAttachments": False,
    }
    if plan.reference is not None:
        document["Reference"] = plan.reference
    if plan.url is not None:
        document["Url"] = plan.url
    return document


def _line_document(line: Line) -> dict[str, Any]:
    document: dict[str, Any] = {"LineItemID": line.line_item_id}
    if line.description is not None:
        document["Description"] = line.description
    document |= {"Quantity": line.quantity, "UnitAmount": line.unit_amount}
    if line.account.code:
        document["AccountCode"] = line.account.code
    return document | {
        "AccountID": line.account.account_id,
        "TaxType": line.tax_type,
        "TaxAmount": line.tax_amount,
        "LineAmount": line.line_amount,
        "Tracking": [],
    }
