"""Check HTTP bodies against Xero's own OpenAPI documents (identity, accounting, bank feeds).

The documents live outside the repository, in `../shared/xero-openapi/` next to it; they
are never copied in. `find_openapi_dir()` looks for them, `openapi_dir_or_skip()` skips the
calling test when they are absent, and `xero_specs_or_skip()` returns all three, parsed
once per process:

    specs = xero_specs_or_skip()
    specs.validate_response("GET", "/api.xro/2.0/Accounts", 200, response.json())
    specs.validate_request_body("POST", "/bankfeeds.xro/1.0/Statements", body)

A concrete request path (any letter case, as Xero's paths are case-insensitive) is mapped
to the document's path template; the body is checked with `jsonschema` against the schema
the document declares for that method and status, after translating OpenAPI 3.0 into JSON
Schema 2020-12:

- `$ref`s to `#/components/...` resolve within the document (a `referencing` registry);
  siblings of a `$ref` are ignored, as OpenAPI 3.0 says, except `nullable`;
- `nullable: true` admits `null`; `x-*`, `example`, `description` and other annotations
  are dropped;
- formats: only `uuid` and `date` (YYYY-MM-DD) are checked. `date-time` is not: the
  accounting API answers with Microsoft JSON dates such as "/Date(1550797359120+0000)/";
- strict mode (the default): an object whose schema lists `properties` may carry no
  other property (`additionalProperties: false`), unless the schema sets
  `additionalProperties` itself. A schema composed with `allOf`/`anyOf`/`oneOf` is closed
  at the composing level instead (`unevaluatedProperties: false`, so each branch may add
  its own properties), unless a branch is an open object. This is what catches a
  misspelt field name.

Two deliberate, documented allowances, each with an option to switch it off or on:

- `envelope` (on by default, accounting only): every accounting answer carries Xero's
  envelope `Id`, `Status`, `ProviderName`, `DateTimeUTC` beside the declared array (the
  documents' own examples show it), but no accounting schema declares those four, so
  they are admitted at the top level of 2xx accounting answers. `envelope=False` refuses
  them.
- `lenient_numbers` (off by default): the bank feeds document declares `amount` as
  `type: number` and `statementLineCount` as `type: integer`, yet every one of its own
  examples sends strings ("100.0000", "1"). With `lenient_numbers=True` a `number` or
  `integer` may also be a string holding a decimal (resp. whole) number. It is off by
  default so that a sandbox cannot drift into strings unnoticed: choose it on purpose.

`open_schemas` names components whose own top level is left open (e.g. the accounting
`Element`, which Xero fills with the whole refused object although the schema declares
only its IDs and `ValidationErrors`).
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml: ~4x slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = [
    "ACCOUNTING_ENVELOPE",
    "DOCUMENT_FILES",
    "ENV_VAR",
    "ContractViolation",
    "Example",
    "Operation",
    "SpecLookupError",
    "SpecName",
    "UndocumentedBody",
    "UnknownOperation",
    "Violation",
    "XeroSpec",
    "XeroSpecs",
    "find_openapi_dir",
    "load_document",
    "load_spec",
    "openapi_dir_candidates",
    "openapi_dir_or_skip",
    "xero_specs_or_skip",
]

ENV_VAR: Final = "XERO_OPENAPI_DIR"
SpecName = Literal["identity", "accounting", "bankfeeds"]
DOCUMENT_FILES: Final[Mapping[SpecName, str]] = {
    "identity": "xero-identity.yaml",
    "accounting": "xero_accounting.yaml",
    "bankfeeds": "xero_bankfeeds.yaml",
}
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
_RELATIVE_LOCATION: Final = Path("..", "shared", "xero-openapi")

ACCOUNTING_ENVELOPE: Final[Mapping[str, Any]] = {
    "Id": {"type": "string", "format": "uuid"},
    "Status": {"type": "string"},
    "ProviderName": {"type": "string"},
    "DateTimeUTC": {"type": "string"},
}
"""Top-level keys of every accounting answer that no accounting schema declares."""


# ------------------------------------------------------------------ finding the documents


def openapi_dir_candidates(repo_root: Path | None = None) -> list[tuple[str, Path]]:
    """Where the documents are looked for, in order, each with how it was derived."""
    root = REPO_ROOT if repo_root is None else repo_root
    found: list[tuple[str, Path]] = []
    if configured := os.environ.get(ENV_VAR):
        found.append((f"${ENV_VAR}", Path(configured).expanduser()))
    found.append(("next to the repository", root / _RELATIVE_LOCATION))
    if (origin := _local_origin(root)) is not None:
        found.append(("next to the clone's origin", origin / _RELATIVE_LOCATION))
    return found


def find_openapi_dir(repo_root: Path | None = None) -> Path | None:
    """The first candidate folder holding all three documents, or None."""
    for _, candidate in openapi_dir_candidates(repo_root):
        if all((candidate / name).is_file() for name in DOCUMENT_FILES.values()):
            return candidate.resolve()
    return None


def openapi_dir_or_skip(repo_root: Path | None = None) -> Path:
    """`find_openapi_dir()`, or skip the calling test saying where it looked."""
    found = find_openapi_dir(repo_root)
    if found is None:
        tried = "; ".join(f"{how}: {path}" for how, path in openapi_dir_candidates(repo_root))
        pytest.skip(
            f"Xero's OpenAPI documents ({', '.join(DOCUMENT_FILES.values())}) not found. "
            f"Tried {tried}. Set ${ENV_VAR} to the folder holding them "
            f"(normally ../shared/xero-openapi next to the repository)."
        )
    return found


def _local_origin(root: Path) -> Path | None:
    """The `origin` remote of the clone at `root`, when it is a folder on this machine."""
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return None
    try:
        completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "-C", str(root), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    url = completed.stdout.strip()
    if completed.returncode != 0 or not url:
        return None
    if url.startswith("file://"):
        url = urllib.parse.unquote(urllib.parse.urlparse(url).path)
    elif "://" in url:
        return None
    origin = Path(url).expanduser()
    if not origin.is_absolute():
        origin = root / origin
    # `host:path` (scp-like ssh) is not a folder here, so it drops out too.
    return origin if origin.is_dir() else None


# ------------------------------------------------------------------ loading


class _Yaml12Loader(_BaseLoader):
    """libyaml's speed with YAML 1.2 core-schema scalars.

    PyYAML resolves YAML 1.1 scalars: the country code `NO` becomes False and an unquoted
    `2019-08-01T10:00:00` a datetime. OpenAPI tooling reads YAML 1.2, where both are
    strings, so only 1.2's booleans, nulls, integers and floats are resolved here.
    """


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
):
    _Yaml12Loader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first)
    )


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    """YAML 1.2 integers: `090` is ninety (1.1 read a leading 0 as octal)."""
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 16) if text.startswith("0x") else int(text, 10)


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


@functools.cache
def load_document(path: Path) -> dict[str, Any]:
    """One OpenAPI document, parsed once per process (the accounting one takes ~0.3 s)."""
    with path.open("rb") as stream:
        loaded = yaml.load(stream, Loader=_Yaml12Loader)  # noqa: S506 - a safe loader
    if not isinstance(loaded, dict) or "paths" not in loaded:
        raise ValueError(f"{path} is not an OpenAPI document")
    return loaded


@functools.cache
def load_spec(name: SpecName, directory: Path) -> XeroSpec:
    """The named document in `directory`, parsed and wrapped once per process."""
    return XeroSpec(load_document(directory / DOCUMENT_FILES[name]), name=name)


def xero_specs_or_skip() -> XeroSpecs:
    """All three documents (each parsed on first use), or skip the calling test."""
    return XeroSpecs(openapi_dir_or_skip())


# ------------------------------------------------------------------ results and errors


@dataclass(frozen=True, order=True)
class Violation:
    """One way a body departs from the schema, at a JSON path such as `Accounts[0].Code`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecLookupError(LookupError):
    """The document does not describe what was asked for."""


class UnknownOperation(SpecLookupError):
    """No path template matches the request path, or it has no such method."""


class UndocumentedBody(SpecLookupError):
    """The operation declares no schema for this status (or request), so nothing was checked.

    Pass `allow_undocumented=True` when that is expected.
    """


class ContractViolation(AssertionError):
    """A body does not match Xero's schema; `violations` lists every departure."""

    def __init__(self, subject: str, violations: Sequence[Violation]) -> None:
        self.subject = subject
        self.violations = list(violations)
        lines = "\n".join(f"  - {violation}" for violation in self.violations)
        count = len(self.violations)
        super().__init__(
            f"{subject} does not match Xero's OpenAPI schema "
            f"({count} violation{'s' if count != 1 else ''}):\n{lines}"
        )


@dataclass(frozen=True)
class Operation:
    """A method on a path template of one document."""

    spec: str
    method: str
    template: str
    definition: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def operation_id(self) -> str:
        return str(self.definition.get("operationId", f"{self.method} {self.template}"))

    def __str__(self) -> str:
        return f"{self.spec} {self.method} {self.template} ({self.operation_id})"


@dataclass(frozen=True)
class Example:
    """An example the document gives for a request (`status` None) or response body."""

    operation: Operation
    status: str | None
    media_type: str
    value: Any


# ------------------------------------------------------------------ translation


@dataclass(frozen=True)
class _Options:
    strict: bool
    lenient_numbers: bool
    open_schemas: frozenset[str]


_COMPOSITION: Final = ("allOf", "anyOf", "oneOf")
_KEPT: Final = frozenset(
    [
        "type",
        "enum",
        "format",
        "required",
        "minimum",
        "maximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
    ]
)  # the validation keywords OpenAPI 3.0 shares with JSON Schema, kept as they are
_DECIMAL_STRING: Final = r"^[-+]?[0-9]+(\.[0-9]+)?$"
_INTEGER_STRING: Final = r"^[-+]?[0-9]+$"
_SCHEMA_REF: Final = "#/components/schemas/"
_LOOSE_KEY: Final = "x-loose-schemas"


class _Translator:
    """OpenAPI 3.0 schema objects to JSON Schema 2020-12, for one document and option set.

    Each component schema gets a strict translation under `components/schemas` and a
    "loose" one under `x-loose-schemas` (identical but open at its own top level), which
    composition branches and the envelope wrapper refer to.
    """

    def __init__(self, document: Mapping[str, Any], uri: str, options: _Options) -> None:
        self.raw_schemas: Mapping[str, Any] = document.get("components", {}).get("schemas", {})
        self.uri = uri
        self.options = options

    def registry(self) -> Registry[Any]:
        strict = {
            name: self.schema(schema, closed=name not in self.options.open_schemas)
            for name, schema in self.raw_schemas.items()
        }
        loose = {name: self._opened(schema) for name, schema in strict.items()}
        contents = {"components": {"schemas": strict}, _LOOSE_KEY: loose}
        registry: Registry[Any] = Registry().with_resource(
            self.uri, DRAFT202012.create_resource(contents)
        )
        return registry

    def ref(self, name: str, *, loose: bool = False) -> str:
        return f"{self.uri}#/{_LOOSE_KEY if loose else 'components/schemas'}/{name}"

    def schema(self, node: Any, *, closed: bool = True) -> Any:
        if not isinstance(node, Mapping):
            return node
        if "$ref" in node:
            return self._reference(node, loose=not closed)
        out: dict[str, Any] = {key: node[key] for key in _KEPT if key in node}
        for bound in ("Minimum", "Maximum"):  # OpenAPI 3.0's boolean exclusive bounds
            if node.get(f"exclusive{bound}") is True and bound.lower() in out:
                out[f"exclusive{bound}"] = out.pop(bound.lower())
        if isinstance(node.get("properties"), Mapping):
            out["properties"] = {k: self.schema(v) for k, v in node["properties"].items()}
        for key in ("items", "additionalProperties", "not"):
            if key in node:
                out[key] = self.schema(node[key])
        composed = [key for key in _COMPOSITION if isinstance(node.get(key), list)]
        for key in composed:
            out[key] = [self.schema(branch, closed=False) for branch in node[key]]
        if self.options.lenient_numbers and out.get("type") in ("number", "integer"):
            pattern = _DECIMAL_STRING if out["type"] == "number" else _INTEGER_STRING
            out["type"] = [out["type"], "string"]
            out.setdefault("pattern", pattern)
        if node.get("nullable") is True:
            _admit_null(out)
        if closed and self.options.strict and "additionalProperties" not in node:
            self._close(out, [branch for key in composed for branch in node[key]])
        return out

    def _close(self, out: dict[str, Any], branches: list[Any]) -> None:
        """Strict mode: refuse properties the schema (or its composition) does not list."""
        if branches and all(self._declares_properties(branch) for branch in branches):
            out["unevaluatedProperties"] = False
        elif not branches and "properties" in out:
            out["additionalProperties"] = False

    def _reference(self, node: Mapping[str, Any], *, loose: bool) -> dict[str, Any]:
        target = str(node["$ref"])
        if not target.startswith(_SCHEMA_REF):
            raise ValueError(f"unsupported $ref {target!r}: only {_SCHEMA_REF}… is handled")
        name = target.removeprefix(_SCHEMA_REF)
        if name not in self.raw_schemas:
            raise ValueError(f"$ref {target!r} names no schema of the document")
        ref = {"$ref": self.ref(name, loose=loose)}
        if node.get("nullable") is True:  # OpenAPI ignores $ref siblings, but not this one
            return {"if": {"type": "null"}, "else": ref}
        return ref

    def _declares_properties(self, branch: Any) -> bool:
        """Whether a composition branch lists its properties (so closing its parent is fair)."""
        if not isinstance(branch, Mapping):
            return branch is False
        if "$ref" in branch:
            return self._declares_properties(
                self.raw_schemas.get(str(branch["$ref"]).removeprefix(_SCHEMA_REF), {})
            )
        if "properties" in branch or branch.get("additionalProperties") is not None:
            return True
        if branch.get("type") not in (None, "object"):
            return True  # not an object: it cannot contribute properties
        composed = [b for key in _COMPOSITION for b in branch.get(key, ())]
        return bool(composed) and all(self._declares_properties(b) for b in composed)

    @staticmethod
    def _opened(schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        opened = dict(schema)
        if opened.get("additionalProperties") is False and "properties" in opened:
            del opened["additionalProperties"]
        opened.pop("unevaluatedProperties", None)
        return opened


def _admit_null(schema: dict[str, Any]) -> None:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]


_FORMATS = FormatChecker(formats=())
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@_FORMATS.checks("uuid")
def _is_uuid(instance: object) -> bool:
    return not isinstance(instance, str) or _UUID.fullmatch(instance) is not None


@_FORMATS.checks("date", raises=ValueError)
def _is_date(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    return _DATE.fullmatch(instance) is not None and bool(date.fromisoformat(instance))


# ------------------------------------------------------------------ the documents


class XeroSpec:
    """One Xero OpenAPI document: find operations, check bodies, read its examples."""

    def __init__(self, document: Mapping[str, Any], *, name: str) -> None:
        self.name = name
        self.document = document
        servers = document.get("servers") or [{"url": "/"}]
        self.base_path = urllib.parse.urlparse(str(servers[0]["url"])).path.rstrip("/")
        self._uri = f"urn:xero-openapi:{name}"
        self._templates: list[tuple[str, list[str]]] = [
            (template, _segments(template)) for template in document["paths"]
        ]
        self._registries: dict[_Options, tuple[_Translator, Registry[Any]]] = {}
        self._validators: dict[tuple[_Options, str, bool], Draft202012Validator] = {}

    @classmethod
    def from_file(cls, path: Path, *, name: str | None = None) -> XeroSpec:
        return cls(load_document(path.resolve()), name=name or path.stem)

    def __repr__(self) -> str:
        return f"XeroSpec({self.name!r}, base_path={self.base_path!r})"

    # -------------------------------------------------------------- operations

    def handles(self, path: str) -> bool:
        """Whether a request path lies under this document's base path."""
        return self._relative(path) is not None

    def operation(self, method: str, path: str) -> Operation:
        """The operation serving a concrete request path (base path included)."""
        method = method.lower()
        relative = self._relative(path)
        if relative is None:
            raise UnknownOperation(
                f"{path!r} is not under the {self.name} API's base path {self.base_path or '/'!r}"
            )
        segments = _segments(relative)
        matches = [
            (template, parameters)
            for template, pattern in self._templates
            if (parameters := _match(pattern, segments)) is not None
        ]
        if not matches:
            close = difflib.get_close_matches(relative, [t for t, _ in self._templates], n=3)
            hint = f"; closest templates: {', '.join(close)}" if close else ""
            raise UnknownOperation(
                f"no path of the {self.name} API matches {path!r} (as {relative!r}){hint}"
            )
        with_method = [(t, p) for t, p in matches if method in self.document["paths"][t]]
        if not with_method:
            offered = sorted(
                {m.upper() for t, _ in matches for m in self.document["paths"][t]} & _METHODS
            )
            raise UnknownOperation(
                f"the {self.name} API has no {method.upper()} on "
                f"{' or '.join(t for t, _ in matches)} (documented: {', '.join(offered)})"
            )
        template = max(with_method, key=lambda match: self._fit(method, *match))[0]
        definition = self.document["paths"][template][method]
        return Operation(self.name, method.upper(), template, definition)

    def _relative(self, path: str) -> str | None:
        path = urllib.parse.urlsplit(path).path.rstrip("/") or "/"
        base = self.base_path
        if not base:
            return path
        if path.casefold() == base.casefold():
            return "/"
        if path.casefold().startswith(base.casefold() + "/"):
            return path[len(base) :]
        return None

    def _fit(self, method: str, template: str, values: dict[str, str]) -> tuple[int, int, int]:
        """Rank a matching template: parameters that fit, literal segments, typed params."""
        declared = {
            str(p.get("name")): p.get("schema", {})
            for p in self._parameters(template, method)
            if p.get("in") == "path"
        }
        fits = typed = 0
        for name, value in values.items():
            schema = declared.get(name, {})
            is_typed = schema.get("format") == "uuid" or schema.get("type") == "integer"
            typed += is_typed
            if schema.get("format") == "uuid":
                fits += _UUID.fullmatch(value) is not None
            elif schema.get("type") == "integer":
                fits += re.fullmatch(r"[0-9]+", value) is not None
            else:
                fits += 1
        literal = sum(1 for segment in _segments(template) if not segment.startswith("{"))
        return (fits == len(values), literal, typed)

    def _parameters(self, template: str, method: str) -> Iterator[Mapping[str, Any]]:
        item = self.document["paths"][template]
        for parameter in [*item.get("parameters", ()), *item[method].get("parameters", ())]:
            yield self._resolve(parameter)

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in str(node["$ref"]).removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    # -------------------------------------------------------------- schemas

    def response_schema(self, method: str, path: str, status: int) -> tuple[Operation, Any]:
        """The operation and the declared response schema (None if it declares no body)."""
        operation = self.operation(method, path)
        responses: Mapping[str, Any] = {
            str(code): response for code, response in operation.definition["responses"].items()
        }
        key = next(
            (k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None
        )
        if key is None:
            raise UndocumentedBody(
                f"{operation} documents no response {status} (documented: "
                f"{', '.join(responses)}); pass allow_undocumented=True if that is expected"
            )
        return operation, _json_schema(self._resolve(responses[key]))

    def request_schema(self, method: str, path: str) -> tuple[Operation, Any, bool]:
        """The operation, its request-body schema (None if none) and whether it is required."""
        operation = self.operation(method, path)
        body = operation.definition.get("requestBody")
        if body is None:
            return operation, None, False
        body = self._resolve(body)
        return operation, _json_schema(body), bool(body.get("required", False))

    # -------------------------------------------------------------- checking

    def response_violations(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        *,
        strict: bool = True,
        lenient_numbers: bool = False,
        envelope: bool = True,
        open_schemas: frozenset[str] = frozenset(),
        allow_undocumented: bool = False,
        schema: str | None = None,
    ) -> list[Violation]:
        """Every way a response body departs from the schema for `status` (empty: none).

        Raises UnknownOperation for an undocumented path or method, and UndocumentedBody
        when the operation declares no schema for `status` (nothing could be checked),
        unless `allow_undocumented`. A status declared without a body accepts `None`.
        `schema` names a component to check against instead of the declared one, for the
        statuses where the document is wrong (bank feeds' Statements errors, declared as
        `Statements` but sent, as its examples show, as an `Error`).
        """
        if schema is not None:
            operation = self.operation(method, path)
            declared: Any = {"$ref": f"{_SCHEMA_REF}{schema}"}
        else:
            try:
                operation, declared = self.response_schema(method, path, status)
            except UndocumentedBody:
                if allow_undocumented:
                    return []
                raise
        if declared is None:
            if body is None or allow_undocumented:
                return []
            raise UndocumentedBody(
                f"response {status} of {operation} declares no body schema, so this body "
                "cannot be checked; pass allow_undocumented=True if that is expected"
            )
        options = _Options(strict, lenient_numbers, frozenset(open_schemas))
        wrap = envelope and self.name == "accounting" and 200 <= status < 300
        which = schema or f"{operation.method} {operation.template} {status}"
        return self._violations((options, which, wrap), declared, body)

    def validate_response(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        *,
        strict: bool = True,
        lenient_numbers: bool = False,
        envelope: bool = True,
        open_schemas: frozenset[str] = frozenset(),
        allow_undocumented: bool = False,
        schema: str | None = None,
    ) -> None:
        """Raise ContractViolation listing every departure; see `response_violations`."""
        violations = self.response_violations(
            method,
            path,
            status,
            body,
            strict=strict,
            lenient_numbers=lenient_numbers,
            envelope=envelope,
            open_schemas=open_schemas,
            allow_undocumented=allow_undocumented,
            schema=schema,
        )
        if violations:
            operation = self.operation(method, path)
            subject = f"response {status} to {method.upper()} {path} ({operation})"
            raise ContractViolation(subject, violations)

    def request_body_violations(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        strict: bool = True,
        lenient_numbers: bool = False,
        open_schemas: frozenset[str] = frozenset(),
        allow_undocumented: bool = False,
    ) -> list[Violation]:
        """Every way a request body departs from the operation's request schema."""
        operation, schema, required = self.request_schema(method, path)
        if schema is None:
            if body is None or allow_undocumented:
                return []
            raise UndocumentedBody(
                f"{operation} declares no request body, so this body cannot be checked; "
                "pass allow_undocumented=True if that is expected"
            )
        if body is None:
            return [Violation("(body)", "a request body is required")] if required else []
        options = _Options(strict, lenient_numbers, frozenset(open_schemas))
        which = f"{operation.method} {operation.template} request"
        return self._violations((options, which, False), schema, body)

    def validate_request_body(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        strict: bool = True,
        lenient_numbers: bool = False,
        open_schemas: frozenset[str] = frozenset(),
        allow_undocumented: bool = False,
    ) -> None:
        """Raise ContractViolation listing every departure; see `request_body_violations`."""
        violations = self.request_body_violations(
            method,
            path,
            body,
            strict=strict,
            lenient_numbers=lenient_numbers,
            open_schemas=open_schemas,
            allow_undocumented=allow_undocumented,
        )
        if violations:
            operation = self.operation(method, path)
            raise ContractViolation(
                f"request body of {method.upper()} {path} ({operation})", violations
            )

    def _violations(
        self, key: tuple[_Options, str, bool], schema: Any, body: Any
    ) -> list[Violation]:
        options, _, wrap = key
        validator = self._validators.get(key)
        if validator is None:
            translator, registry = self._registry(options)
            if wrap:
                translated: Any = {
                    "allOf": [translator.schema(schema, closed=False)],
                    "properties": dict(ACCOUNTING_ENVELOPE),
                }
                if options.strict:
                    translated["unevaluatedProperties"] = False
            else:
                translated = translator.schema(schema)
            validator = Draft202012Validator(translated, registry=registry, format_checker=_FORMATS)
            self._validators[key] = validator
        return sorted(
            {
                violation
                for error in validator.iter_errors(body)
                for violation in self._explain(error, registry=self._registry(options)[1])
            }
        )

    def _registry(self, options: _Options) -> tuple[_Translator, Registry[Any]]:
        if options not in self._registries:
            translator = _Translator(self.document, self._uri, options)
            self._registries[options] = (translator, translator.registry())
        return self._registries[options]

    def _explain(self, error: ValidationError, *, registry: Registry[Any]) -> list[Violation]:
        where = _json_path(error.absolute_path)
        instance = error.instance
        keyword = error.validator
        if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(
            instance, Mapping
        ):
            declared = _declared(error.schema, registry)
            return [
                Violation(
                    _json_path([*error.absolute_path, name]),
                    "not a property of this object in Xero's schema"
                    + _did_you_mean(str(name), declared),
                )
                for name in instance
                if name not in declared
            ]  # none: a branch failed (reported on its own), so its properties went unseen
        if keyword == "enum" and isinstance(error.validator_value, list):
            allowed = error.validator_value
            shown = ", ".join(repr(value) for value in allowed[:10])
            more = f", … {len(allowed)} values in all" if len(allowed) > 10 else ""
            hint = _did_you_mean(str(instance), [str(v) for v in allowed])
            return [Violation(where, f"{instance!r} is not one of [{shown}{more}]{hint}")]
        if keyword == "format":
            expected = "YYYY-MM-DD" if error.validator_value == "date" else error.validator_value
            return [Violation(where, f"{instance!r} is not a valid {expected}")]
        if (
            keyword == "type"
            and isinstance(instance, str)
            and _numeric(error.validator_value)
            and re.fullmatch(_DECIMAL_STRING, instance)
        ):
            hint = "a number sent as a string, as some of Xero's own examples do"
            return [Violation(where, f"{error.message} ({hint}; lenient_numbers=True admits it)")]
        if error.context and keyword in _COMPOSITION:
            closest = best_match(error.context)
            return [
                Violation(where, f"matches no alternative of its {keyword}; closest:"),
                *self._explain(closest, registry=registry),
            ]
        return [Violation(where, error.message)]

    # -------------------------------------------------------------- examples

    def examples(self) -> Iterator[Example]:
        """Every request and response example the document gives, JSON strings decoded."""
        for template, item in self.document["paths"].items():
            for method, definition in item.items():
                if method not in _METHODS_LOWER:
                    continue
                operation = Operation(self.name, method.upper(), template, definition)
                bodies: list[tuple[str | None, Mapping[str, Any]]] = []
                if "requestBody" in definition:
                    bodies.append((None, self._resolve(definition["requestBody"])))
                bodies += [
                    (str(code), self._resolve(response))
                    for code, response in definition.get("responses", {}).items()
                ]
                for status, body in bodies:
                    for media_type, content in (body.get("content") or {}).items():
                        if "json" in media_type and "example" in content:
                            value = _decoded(content["example"], content.get("schema"))
                            yield Example(operation, status, media_type, value)

    def example(self, method: str, template: str, status: int | None = None) -> Any:
        """The JSON example for a response `status`, or for the request body if None."""
        for found in self.examples():
            if (
                found.operation.method == method.upper()
                and found.operation.template.casefold() == template.casefold()
                and found.status == (None if status is None else str(status))
            ):
                return copy.deepcopy(found.value)
        what = "request" if status is None else f"response {status}"
        raise SpecLookupError(
            f"the {self.name} API gives no {what} example for {method} {template}"
        )


class XeroSpecs:
    """The three documents of one folder, each loaded on first use; dispatch by path."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def identity(self) -> XeroSpec:
        return load_spec("identity", self.directory)

    @property
    def accounting(self) -> XeroSpec:
        return load_spec("accounting", self.directory)

    @property
    def bankfeeds(self) -> XeroSpec:
        return load_spec("bankfeeds", self.directory)

    def for_path(self, path: str) -> XeroSpec:
        """The document serving a request path: /api.xro/2.0/…, /bankfeeds.xro/1.0/…, else
        identity (/connections)."""
        lowered = path.casefold()
        if lowered.startswith("/api.xro/"):
            return self.accounting
        if lowered.startswith("/bankfeeds.xro/"):
            return self.bankfeeds
        return self.identity

    def validate_response(
        self, method: str, path: str, status: int, body: Any, **options: Any
    ) -> None:
        """`XeroSpec.validate_response` on the document serving `path`."""
        self.for_path(path).validate_response(method, path, status, body, **options)

    def validate_request_body(self, method: str, path: str, body: Any, **options: Any) -> None:
        """`XeroSpec.validate_request_body` on the document serving `path`."""
        self.for_path(path).validate_request_body(method, path, body, **options)


# ------------------------------------------------------------------ helpers

_METHODS: Final = frozenset({"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"})
_METHODS_LOWER: Final = frozenset(method.lower() for method in _METHODS)


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _match(pattern: Sequence[str], segments: Sequence[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    values: dict[str, str] = {}
    for expected, actual in zip(pattern, segments, strict=True):
        if expected.startswith("{") and expected.endswith("}"):
            values[expected[1:-1]] = urllib.parse.unquote(actual)
        elif expected.casefold() != actual.casefold():
            return None
    return values


def _json_schema(described: Mapping[str, Any]) -> Any:
    """The schema of a request or response object's JSON content, None if it has none."""
    content: Mapping[str, Any] = described.get("content") or {}
    for media_type in ("application/json", *sorted(content)):
        if "json" in media_type and "schema" in content.get(media_type, {}):
            return content[media_type]["schema"]
    return None


def _decoded(example: Any, schema: Any) -> Any:
    """Examples given as JSON text (identity's /Connections) decoded, unless a string is meant."""
    if isinstance(example, str) and not (
        isinstance(schema, Mapping) and schema.get("type") == "string"
    ):
        try:
            return json.loads(example)
        except ValueError:
            return example
    return example


def _declared(schema: Any, registry: Registry[Any]) -> list[str]:
    """The property names a translated schema admits, following $ref and composition."""
    names: list[str] = []
    stack = [schema]
    resolver = registry.resolver()
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping) or id(node) in seen:
            continue
        seen.add(id(node))
        names += [name for name in node.get("properties", {}) if name not in names]
        if "$ref" in node:
            stack.append(resolver.lookup(node["$ref"]).contents)
        for key in (*_COMPOSITION, "else"):
            branches = node.get(key, [])
            stack += branches if isinstance(branches, list) else [branches]
    return names


def _did_you_mean(value: str, choices: Sequence[str]) -> str:
    lowered = {choice.casefold(): choice for choice in choices}
    close = [lowered[value.casefold()]] if value.casefold() in lowered else []
    close = close or difflib.get_close_matches(value, choices, n=1, cutoff=0.72)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _numeric(expected: Any) -> bool:
    kinds = [expected] if isinstance(expected, str) else list(expected)
    return any(kind in ("number", "integer") for kind in kinds)


def _json_path(parts: Sequence[str | int] | Any) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(body)"
