"""tests/xero_openapi.py: it finds Xero's documents, accepts their own examples and refuses
bodies that depart from them, saying where and how."""

import shutil
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.xero_openapi import (
    ENV_VAR,
    ContractViolation,
    UndocumentedBody,
    UnknownOperation,
    XeroSpec,
    XeroSpecs,
    find_openapi_dir,
    openapi_dir_candidates,
    openapi_dir_or_skip,
    xero_specs_or_skip,
)

ACCOUNT_ID = "ebd06280-af70-4bed-97c6-7451a454ad85"
ACCOUNTS = "/api.xro/2.0/Accounts"
STATEMENTS = "/bankfeeds.xro/1.0/Statements"
FEEDS = "/bankfeeds.xro/1.0/FeedConnections"


@pytest.fixture(scope="module")
def specs() -> XeroSpecs:
    return xero_specs_or_skip()


def account(**fields: Any) -> dict[str, Any]:
    return {"AccountID": ACCOUNT_ID, "Code": "090", "Name": "HKD", "Type": "BANK"} | fields


def statement(**fields: Any) -> dict[str, Any]:
    return {
        "feedConnectionId": "6a4b9ff5-3a5f-4321-936b-4796163550f6",
        "startDate": "2026-11-02",
        "endDate": "2026-11-02",
        "startBalance": {"amount": 100, "creditDebitIndicator": "CREDIT"},
        "endBalance": {"amount": 150.5, "creditDebitIndicator": "CREDIT"},
        "statementLines": [
            {"postedDate": "2026-11-02", "amount": 50.5, "creditDebitIndicator": "CREDIT"}
        ],
    } | fields


def messages(error: pytest.ExceptionInfo[ContractViolation]) -> list[str]:
    return [str(violation) for violation in error.value.violations]


# ---------------------------------------------------------------- finding the documents


def test_the_env_var_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = openapi_dir_or_skip()
    for document in real.iterdir():
        (tmp_path / document.name).symlink_to(document)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert find_openapi_dir() == tmp_path.resolve()


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_a_fresh_clone_finds_them_next_to_its_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_url: bool
) -> None:
    real = openapi_dir_or_skip()
    git = shutil.which("git") or pytest.skip("git is not installed")
    upstream = tmp_path / "upstream" / "main"
    upstream.mkdir(parents=True)
    (tmp_path / "upstream" / "shared").mkdir()
    (tmp_path / "upstream" / "shared" / "xero-openapi").symlink_to(real)
    clone = tmp_path / "clone"
    origin = upstream.as_uri() if as_url else str(upstream)
    for args in (["init", "-q", str(clone)], ["-C", str(clone), "remote", "add", "origin", origin]):
        subprocess.run([git, *args], check=True, capture_output=True)  # noqa: S603
    monkeypatch.delenv(ENV_VAR, raising=False)

    assert find_openapi_dir(clone) == real
    assert [how for how, _ in openapi_dir_candidates(clone)] == [
        "next to the repository",
        "next to the clone's origin",
    ]


def test_the_skip_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        openapi_dir_or_skip(tmp_path / "repo")
    reason = str(skipped.value)
    assert f"${ENV_VAR}: {tmp_path / 'nowhere'}" in reason
    assert f"next to the repository: {tmp_path / 'repo' / '..' / 'shared' / 'xero-openapi'}" in (
        reason
    )
    assert "xero_accounting.yaml" in reason


# ---------------------------------------------------------------- Xero's own examples


class Case(NamedTuple):
    document: str
    method: str
    template: str
    status: int | None  # None: the request body's example
    path: str  # the concrete path a client would request
    options: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.document}-{self.method}-{self.template}-{self.status or 'request'}"


ACCEPTED_EXAMPLES = [
    Case("identity", "GET", "/Connections", 200, "/connections", {}),
    Case("bankfeeds", "GET", "/FeedConnections", 202, FEEDS, {}),
    Case("bankfeeds", "POST", "/FeedConnections", None, FEEDS, {}),
    Case("bankfeeds", "POST", "/FeedConnections", 202, FEEDS, {}),
    Case("bankfeeds", "POST", "/FeedConnections", 400, FEEDS, {}),
    Case("bankfeeds", "GET", "/Statements", 200, STATEMENTS, {"lenient_numbers": True}),
    Case("bankfeeds", "POST", "/Statements", None, STATEMENTS, {"lenient_numbers": True}),
    Case("bankfeeds", "POST", "/Statements", 202, STATEMENTS, {}),
    Case("bankfeeds", "POST", "/Statements", 403, STATEMENTS, {}),
    Case("bankfeeds", "POST", "/Statements", 409, STATEMENTS, {}),
    Case("accounting", "GET", "/Accounts", 200, ACCOUNTS, {}),
    Case("accounting", "PUT", "/Accounts", None, ACCOUNTS, {}),
    Case("accounting", "PUT", "/Accounts", 200, ACCOUNTS, {}),
    Case("accounting", "GET", "/Accounts/{AccountID}", 200, f"{ACCOUNTS}/{ACCOUNT_ID}", {}),
    Case("accounting", "GET", "/Organisation", 200, "/api.xro/2.0/Organisation", {}),
    Case("accounting", "GET", "/Currencies", 200, "/api.xro/2.0/Currencies", {}),
]


@pytest.mark.parametrize("case", ACCEPTED_EXAMPLES, ids=str)
def test_xeros_own_examples_are_accepted(specs: XeroSpecs, case: Case) -> None:
    spec: XeroSpec = getattr(specs, case.document)
    example = spec.example(case.method, case.template, case.status)
    if case.status is None:
        specs.validate_request_body(case.method, case.path, example, **case.options)
    else:
        specs.validate_response(case.method, case.path, case.status, example, **case.options)


def test_the_bank_feeds_examples_send_numbers_as_strings(specs: XeroSpecs) -> None:
    """Why `lenient_numbers` exists: the spec says number, its examples say "100.0000"."""
    example = specs.bankfeeds.example("GET", "/Statements", 200)
    with pytest.raises(ContractViolation) as refused:
        specs.validate_response("GET", STATEMENTS, 200, example)
    assert {violation.path for violation in refused.value.violations} == {
        f"items[{i}].{field}"
        for i in (0, 1)
        for field in ("startBalance.amount", "endBalance.amount", "statementLineCount")
    }
    assert "'100.0000' is not of type 'number'" in str(refused.value)
    assert "lenient_numbers=True admits it" in str(refused.value)


def test_the_bank_transaction_examples_carry_undeclared_fields(specs: XeroSpecs) -> None:
    """Xero's examples show DateString and BatchPayment, which its schema does not declare."""
    example = specs.accounting.example("GET", "/BankTransactions", 200)
    with pytest.raises(ContractViolation) as refused:
        specs.validate_response("GET", "/api.xro/2.0/BankTransactions", 200, example)
    assert {v.path.split(".")[-1] for v in refused.value.violations} == {
        "DateString",
        "BatchPayment",
    }
    specs.validate_response("GET", "/api.xro/2.0/BankTransactions", 200, example, strict=False)


# ---------------------------------------------------------------- refusals


def test_a_misspelt_field_is_refused_in_strict_mode(specs: XeroSpecs) -> None:
    body = {"Accounts": [account(CurrencyCod="HKD")]}
    with pytest.raises(ContractViolation) as refused:
        specs.validate_response("GET", ACCOUNTS, 200, body)
    assert messages(refused) == [
        "Accounts[0].CurrencyCod: not a property of this object in Xero's schema "
        "(did you mean 'CurrencyCode'?)"
    ]
    assert "response 200 to GET /api.xro/2.0/Accounts" in str(refused.value)
    specs.validate_response("GET", ACCOUNTS, 200, body, strict=False)


def test_every_violation_is_listed_with_its_path(specs: XeroSpecs) -> None:
    body = {
        "Accounts": [
            account(),
            account(AccountID="not-a-uuid", CurrencyCode="XYZ", Status="ACTIVE"),
            account(Type="BANKK", EnablePaymentsToAccount="false"),
        ]
    }
    with pytest.raises(ContractViolation) as refused:
        specs.validate_response("GET", ACCOUNTS, 200, body)
    assert messages(refused) == [
        "Accounts[1].AccountID: 'not-a-uuid' is not a valid uuid",
        "Accounts[1].CurrencyCode: 'XYZ' is not one of ['AED', 'AFN', 'ALL', 'AMD', 'ANG', "
        "'AOA', 'ARS', 'AUD', 'AWG', 'AZN', … 168 values in all]",
        "Accounts[2].EnablePaymentsToAccount: 'false' is not of type 'boolean'",
        "Accounts[2].Type: 'BANKK' is not one of ['BANK', 'CURRENT', 'CURRLIAB', 'DEPRECIATN', "
        "'DIRECTCOSTS', 'EQUITY', 'EXPENSE', 'FIXED', 'INVENTORY', 'LIABILITY', "
        "… 18 values in all] (did you mean 'BANK'?)",
    ]
    assert "(4 violations)" in str(refused.value)


def test_dates_are_yyyy_mm_dd_and_date_times_are_not_checked(specs: XeroSpecs) -> None:
    bad = [statement(startDate="2026/11/02"), statement(endDate="2026-02-30")]
    with pytest.raises(ContractViolation) as refused:
        specs.validate_request_body("POST", STATEMENTS, {"items": bad})
    assert messages(refused) == [
        "items[0].startDate: '2026/11/02' is not a valid YYYY-MM-DD",
        "items[1].endDate: '2026-02-30' is not a valid YYYY-MM-DD",
    ]
    ms_date = {"Accounts": [account(UpdatedDateUTC="/Date(1550797359120+0000)/")]}
    specs.validate_response("GET", ACCOUNTS, 200, ms_date)


def test_numbers_as_strings_only_when_lenient(specs: XeroSpecs) -> None:
    as_strings = statement(startBalance={"amount": "100.00", "creditDebitIndicator": "CREDIT"})
    specs.validate_request_body("POST", STATEMENTS, {"items": [statement()]})
    with pytest.raises(ContractViolation, match=r"items\[0\]\.startBalance\.amount: '100\.00'"):
        specs.validate_request_body("POST", STATEMENTS, {"items": [as_strings]})
    specs.validate_request_body("POST", STATEMENTS, {"items": [as_strings]}, lenient_numbers=True)
    garbage = statement(startBalance={"amount": "lots", "creditDebitIndicator": "CREDIT"})
    with pytest.raises(ContractViolation, match="'lots' does not match"):
        specs.validate_request_body("POST", STATEMENTS, {"items": [garbage]}, lenient_numbers=True)


def test_yaml_1_2_keeps_norway_a_country(specs: XeroSpecs) -> None:
    """PyYAML's YAML 1.1 would read the enum value NO as False."""
    feed = {"accountToken": "t-1", "accountType": "BANK", "currency": "NOK", "country": "NO"}
    specs.validate_request_body("POST", "/bankfeeds.xro/1.0/FeedConnections", {"items": [feed]})


def test_a_request_body_is_checked_too(specs: XeroSpecs) -> None:
    body = {"BankTransactions": [{"Type": "RECEIVE", "BankAccount": {}, "Lineitems": []}]}
    with pytest.raises(ContractViolation) as refused:
        specs.validate_request_body("PUT", "/api.xro/2.0/BankTransactions", body)
    assert messages(refused) == [
        "BankTransactions[0]: 'LineItems' is a required property",
        "BankTransactions[0].Lineitems: not a property of this object in Xero's schema "
        "(did you mean 'LineItems'?)",
    ]


def test_the_accounting_envelope(specs: XeroSpecs) -> None:
    envelope = {"Id": ACCOUNT_ID, "Status": "OK", "ProviderName": "p", "DateTimeUTC": "x"}
    body = envelope | {"Accounts": [account(Nmae="typo")]}
    with pytest.raises(ContractViolation) as refused:
        specs.validate_response("GET", ACCOUNTS, 200, body)
    assert messages(refused) == [
        "Accounts[0].Nmae: not a property of this object in Xero's schema (did you mean 'Name'?)"
    ]
    with pytest.raises(ContractViolation) as refused:
        specs.validate_response("GET", ACCOUNTS, 200, envelope | {"Id": "1"}, envelope=False)
    paths = [v.path for v in refused.value.violations]
    assert paths == ["DateTimeUTC", "Id", "ProviderName", "Status"]
    with pytest.raises(ContractViolation, match="Id: '1' is not a valid uuid"):
        specs.validate_response("GET", ACCOUNTS, 200, envelope | {"Id": "1"})
    error = {"ErrorNumber": 10, "Type": "ValidationException", "Message": "m"}
    with pytest.raises(ContractViolation, match="Status: not a property"):
        specs.validate_response("PUT", ACCOUNTS, 400, error | {"Status": "OK"})


def test_a_named_schema_replaces_a_wrong_declaration(specs: XeroSpecs) -> None:
    """Statements errors are declared as Statements, but sent (as shown) as an Error."""
    example = specs.bankfeeds.example("POST", "/Statements", 422)
    with pytest.raises(ContractViolation, match="title: not a property"):
        specs.validate_response("POST", STATEMENTS, 422, example)
    specs.validate_response("POST", STATEMENTS, 422, example, schema="Error")
    with pytest.raises(ContractViolation, match="'invalid-balance' is not one of"):
        specs.validate_response(
            "POST", STATEMENTS, 422, example | {"type": "invalid-balance"}, schema="Error"
        )


def test_open_schemas_admit_xeros_refused_objects(specs: XeroSpecs) -> None:
    """Xero echoes the refused object in Elements; the schema declares only its IDs."""
    example = specs.accounting.example("PUT", "/Accounts", 400)
    with pytest.raises(ContractViolation, match=r"Elements\[0\]\.Code: not a property"):
        specs.validate_response("PUT", ACCOUNTS, 400, example)
    specs.validate_response("PUT", ACCOUNTS, 400, example, open_schemas=frozenset({"Element"}))


# ---------------------------------------------------------------- finding the operation


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("GET", "/connections", "/Connections"),
        ("DELETE", f"/Connections/{ACCOUNT_ID}", "/Connections/{id}"),
        ("GET", f"/API.XRO/2.0/accounts/{ACCOUNT_ID}/", "/Accounts/{AccountID}"),
        ("GET", "/api.xro/2.0/Accounts?where=Type%3D%3D%22BANK%22", "/Accounts"),
        ("GET", f"/api.xro/2.0/Contacts/{ACCOUNT_ID}", "/Contacts/{ContactID}"),
        ("GET", "/api.xro/2.0/Contacts/SB2", "/Contacts/{ContactNumber}"),
        ("GET", "/api.xro/2.0/Journals/1000", "/Journals/{JournalNumber}"),
        ("GET", "/api.xro/2.0/Reports/BalanceSheet", "/Reports/BalanceSheet"),
        ("POST", f"{FEEDS.lower()}/deleterequests", "/FeedConnections/DeleteRequests"),
    ],
)
def test_paths_map_to_templates(specs: XeroSpecs, method: str, path: str, template: str) -> None:
    assert specs.for_path(path).operation(method, path).template == template


def test_unknown_paths_methods_and_statuses_say_so(specs: XeroSpecs) -> None:
    with pytest.raises(UnknownOperation, match="closest templates: /BankTransactions"):
        specs.validate_response("GET", "/api.xro/2.0/BankTransaction", 200, {})
    with pytest.raises(UnknownOperation, match="not under the bankfeeds API's base path"):
        specs.bankfeeds.validate_response("GET", "/bankfeeds.xro/2.0/Statements", 200, {})
    with pytest.raises(UnknownOperation, match=r"no PATCH on /Accounts \(documented: GET, PUT\)"):
        specs.validate_response("PATCH", ACCOUNTS, 200, {})
    with pytest.raises(UndocumentedBody, match="documents no response 404"):
        specs.validate_response("GET", ACCOUNTS, 404, {"Message": "gone"})
    specs.validate_response("GET", ACCOUNTS, 404, {}, allow_undocumented=True)


def test_a_status_without_a_body(specs: XeroSpecs) -> None:
    path = f"/connections/{ACCOUNT_ID}"
    specs.validate_response("DELETE", path, 204, None)
    with pytest.raises(UndocumentedBody, match="declares no body schema"):
        specs.validate_response("DELETE", path, 404, {"title": "Not found"})
    specs.validate_response("DELETE", path, 404, {"title": "Not found"}, allow_undocumented=True)
    with pytest.raises(ContractViolation, match="a request body is required"):
        specs.validate_request_body("PUT", ACCOUNTS, None)


# ---------------------------------------------------------------- OpenAPI 3.0 features Xero's
# documents do not use (yet): nullable, composition, additionalProperties.


def json_body(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


SYNTHETIC: dict[str, Any] = {
    "openapi": "3.0.0",
    "servers": [{"url": "https://example.test/v1"}],
    "paths": {
        "/Things": {
            "post": {"requestBody": json_body("Thing"), "responses": {"default": json_body("Free")}}
        }
    },
    "components": {
        "schemas": {
            "Named": {
                "type": "object",
                "properties": {"name": {"type": "string", "nullable": True}},
            },
            "Thing": {
                "allOf": [
                    {"$ref": "#/components/schemas/Named"},
                    {"properties": {"size": {"type": "integer", "x-size": 1, "example": "big"}}},
                ],
                "properties": {"kind": {"type": "string", "enum": ["a", "b"], "nullable": True}},
            },
            "Free": {
                "type": "object",
                "properties": {
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "parent": {"$ref": "#/components/schemas/Named", "nullable": True},
                },
            },
        }
    },
}


def test_nullable_composition_and_additional_properties() -> None:
    spec = XeroSpec(SYNTHETIC, name="synthetic")
    spec.validate_request_body("POST", "/v1/things", {"name": None, "size": 3, "kind": None})
    with pytest.raises(ContractViolation) as refused:
        spec.validate_request_body("POST", "/v1/things", {"name": 1, "sise": 3, "kind": "c"})
    assert messages(refused) == [
        "kind: 'c' is not one of ['a', 'b', None]",
        "name: 1 is not of type 'string', 'null'",
        "sise: not a property of this object in Xero's schema (did you mean 'size'?)",
    ]
    spec.validate_response("POST", "/v1/things", 201, {"tags": {"any": "x"}, "parent": None})
    with pytest.raises(ContractViolation) as refused:
        spec.validate_response("POST", "/v1/things", 200, {"tags": {"a": 1}, "parent": {"n": 1}})
    assert messages(refused) == [
        "parent.n: not a property of this object in Xero's schema",
        "tags.a: 1 is not of type 'string'",
    ]
