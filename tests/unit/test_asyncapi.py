"""The AsyncAPI document: current, valid AsyncAPI 3.0, and enough to write valid events."""

import copy
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from typer.testing import CliRunner

from shared.contracts import ALL_TOPICS
from shared.contracts.asyncapi import build_document, render_yaml
from xerosync.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.yaml"
ASYNCAPI_SCHEMA = json.loads((ROOT / "tests/data/asyncapi-3.0.0.schema.json").read_text())


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMMITTED.read_text())
    return loaded


def test_the_committed_document_is_current() -> None:
    fresh = render_yaml(build_document(version("xerosync")))
    assert COMMITTED.read_text() == fresh, "docs/asyncapi.yaml is stale: run `xerosync asyncapi`"


def test_the_check_command_agrees(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["asyncapi", "--check", f"--output={COMMITTED}"]).exit_code == 0
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(COMMITTED.read_text().replace("HKD Current", "HKD Old"))
    result = runner.invoke(app, ["asyncapi", "--check", f"--output={stale}"])
    assert result.exit_code == 1
    assert "stale" in result.output


def test_it_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(ASYNCAPI_SCHEMA)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_the_validation_can_fail(document: dict[str, Any]) -> None:
    broken = copy.deepcopy(document)
    broken["channels"]["bank.transactions.v1"]["address"] = 42
    del broken["info"]["version"]
    assert not jsonschema.Draft7Validator(ASYNCAPI_SCHEMA).is_valid(broken)


def test_every_topic_its_dlq_and_every_event_are_documented(document: dict[str, Any]) -> None:
    for spec in ALL_TOPICS:
        channel = document["channels"][spec.name]
        assert channel["address"] == "{prefix}" + spec.name
        assert set(channel["messages"]) == {event.__name__ for event in spec.events}
        assert f"`{spec.key_field}`" in channel["description"]
        assert spec.name + ".dlq" in document["channels"]
    headers = document["components"]["messages"]["DeadLetter"]["headers"]["properties"]
    assert {"x-dlq-error", "x-dlq-origin-offset", "x-dlq-attempt"} <= set(headers)


def _payload_validator(document: dict[str, Any], message: str) -> Validator:
    """Validate payloads the way an outside producer would: from the document alone."""
    components = document["components"]
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:asyncapi", resource)
    schema = {"$ref": "urn:asyncapi#" + components["messages"][message]["payload"]["$ref"][1:]}
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.FormatChecker()
    )


def test_every_example_validates_against_its_documented_schema(document: dict[str, Any]) -> None:
    for name, message in document["components"]["messages"].items():
        for example in message.get("examples", []):
            errors = list(_payload_validator(document, name).iter_errors(example["payload"]))
            assert errors == [], (name, [e.message for e in errors])


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 125.5},  # a JSON number
        {"amount": "-1.00"},
        {"amount": "0"},
        {"currency": "XYZ"},
        {"direction": "in"},
        {"surprise": 1},
    ],
)
def test_the_documented_schema_refuses_what_the_syncer_refuses(
    document: dict[str, Any], change: dict[str, Any]
) -> None:
    example = document["components"]["messages"]["TransactionBooked"]["examples"][0]["payload"]
    validator = _payload_validator(document, "TransactionBooked")
    assert validator.is_valid(example)
    assert not validator.is_valid(example | change)


def test_the_documented_schema_requires_the_envelope(document: dict[str, Any]) -> None:
    example = document["components"]["messages"]["TransactionBooked"]["examples"][0]["payload"]
    validator = _payload_validator(document, "TransactionBooked")
    for field in ("type", "event_id", "occurred_at", "schema_version"):
        assert not validator.is_valid({k: v for k, v in example.items() if k != field}), field
