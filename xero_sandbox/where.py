"""Xero's query language: the `where` and `order` parameters of the Accounting API's GETs.

Xero evaluates them with Dynamic LINQ, and the sandbox keeps its rules:
- `where` compares fields with literals (`==`, `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`), calls
  `.Contains/.StartsWith/.EndsWith("…")`, `.ToString()`, `.ToLower()`, `.ToUpper()`, and joins
  tests with AND/&&, OR/||, NOT/! and parentheses;
- member names and string comparisons ignore case, as Xero's do; a bare word compared with
  an enum field is its value (`Type==BANK`, as the spec's Ruby example writes it);
- unknown fields, unknown methods and type clashes (a Guid compared with a string) are
  refused with Dynamic LINQ's own messages, which Xero sends as a 400 QueryParseException;
- `order` is `Name ASC, Code DESC`; nulls sort first, as SQL Server sorts them;
- both are parsed before any item is looked at, so a bad query fails even on an empty list.

The interface: a resource declares what may be named as `Fields` (each field's type), and
shows each item as a `Row` (field name → value); `select` filters and sorts, raising
`QueryParseError` for a query Xero would refuse. `compile_where` and `compile_order` are its
two halves.
"""

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import ge, gt, le, lt
from typing import Any, Literal, TypeVar

from xero_sandbox.accounting_json import parse_timestamp

T = TypeVar("T")


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
