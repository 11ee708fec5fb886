"""Renders the event contracts as an AsyncAPI 3.0 document.

The document is generated, never edited: `xerosync asyncapi` rewrites
`docs/asyncapi.yaml`, and a test fails when the committed copy is stale.
"""

from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from .base import Event
from .currencies import MINOR_UNITS
from .examples import EXAMPLES
from .topics import ALL_TOPICS, DLQ_SUFFIX, TopicSpec

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
_REF = "#/components/schemas/{model}"

DLQ_HEADERS: dict[str, str] = {
    "x-dlq-error": "Why the record was refused, e.g. `amount: must be greater than zero`.",
    "x-dlq-error-class": "`validation` (the record itself is wrong), `conflict` (its id "
    "was already used with other content) or `storage` (the database refused it).",
    "x-dlq-consumer": "The consumer group that refused it, e.g. `xerosync-syncer-ingest`.",
    "x-dlq-attempt": "How many times this record has been dead-lettered (1 the first time).",
    "x-dlq-origin-topic": "Topic the record was read from.",
    "x-dlq-origin-partition": "Partition it was read from.",
    "x-dlq-origin-offset": "Offset it was read from.",
    "x-dlq-origin-timestamp": "Kafka timestamp of the original record (ms since epoch).",
    "x-dlq-failed-at": "When it was dead-lettered, RFC 3339.",
}

_DESCRIPTION = """\
Events that flow between the bank and xerosync, and between xerosync's services.

**Writing events.** One JSON object (UTF-8) per Kafka record, with the record key named
by each channel. Every event carries `type` (the message name), `event_id` (a UUID),
`occurred_at` (RFC 3339 with an offset) and `schema_version` (1). Money is a decimal
*string*, never a JSON number, with at most the currency's minor units after the point
(`"125.50"` HKD, `"300"` JPY). Timestamps need an offset; dates are `YYYY-MM-DD`.
Unknown fields are refused, so a misspelt field never passes silently.

**Ordering.** Transactions reach Xero in `booked_at` order (then `transaction_id`) per
account. Keying by `account_id` keeps one account's events in one partition.

**Idempotency.** Sending the same `transaction_id` again changes nothing; replaying a
topic is safe. Reusing a `transaction_id` for *different* content is refused.

**Refused events** go to the channel's dead-letter topic (`<topic>.dlq`) with the
original bytes and headers saying why; the consumer carries on.

**Environments.** Topic names take an optional prefix (`TOPIC_PREFIX`, e.g. `staging.`)
so several environments can share one cluster.
"""


def build_document(version: str) -> dict[str, Any]:
    """The AsyncAPI document as plain data, in a stable order."""
    events = [event for spec in ALL_TOPICS for event in spec.events]
    _, definitions = models_json_schema(
        [(event, "validation") for event in events], ref_template=_REF
    )
    schemas: dict[str, Any] = dict(sorted(definitions["$defs"].items()))
    for schema in schemas.values():
        _hoist_currency(schema)
    schemas["CurrencyCode"] = {
        "type": "string",
        "enum": sorted(MINOR_UNITS),
        "description": "ISO 4217 alphabetic code of a currency an account can be held in. "
        "`x-minor-units` gives the decimal places each allows in amounts.",
        "x-minor-units": dict(sorted(MINOR_UNITS.items())),
    }
    schemas["DeadLetter"] = {
        "type": "string",
        "format": "binary",
        "description": "The refused record's value, byte for byte (it may not be JSON).",
    }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in ALL_TOPICS:
        channel_id = spec.name
        channels[channel_id] = _channel(spec)
        channels[channel_id + DLQ_SUFFIX] = _dlq_channel(spec)
        for event in spec.events:
            messages[event.__name__] = _message(event, spec)
        operations[_operation_id(spec)] = {
            "action": "receive" if spec.produced_outside else "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Produced by {spec.producers}; consumed by {spec.consumers}.",
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{event.__name__}"}
                for event in spec.events
            ],
        }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "Refused record",
        "summary": "A record a consumer could not accept, with the reason in its headers.",
        "payload": {"$ref": _REF.format(model="DeadLetter")},
        "headers": {
            "type": "object",
            "properties": {
                name: {"type": "string", "description": text} for name, text in DLQ_HEADERS.items()
            },
            "required": list(DLQ_HEADERS),
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record's key."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "xerosync events",
            "version": version,
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "The bank's Kafka cluster (Apache Kafka 3.x or newer).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _hoist_currency(node: Any) -> None:
    """Replace each inline copy of the currency list with a reference to one component."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and value.get("enum") == sorted(MINOR_UNITS):
                node[key] = {"$ref": _REF.format(model="CurrencyCode")} | (
                    {"description": value["description"]} if "description" in value else {}
                )
            else:
                _hoist_currency(value)
    elif isinstance(node, list):
        for item in node:
            _hoist_currency(item)


def _operation_id(spec: TopicSpec) -> str:
    words = spec.name.replace(".v1", "").replace("-", ".").split(".")
    return "on" + "".join(word.capitalize() for word in words)


def _prefix_parameter() -> dict[str, Any]:
    return {
        "prefix": {
            "description": "The environment's TOPIC_PREFIX; empty by default.",
            "default": "",
            "examples": ["", "staging."],
        }
    }


def _channel(spec: TopicSpec) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": "{prefix}" + spec.name,
        "title": spec.name,
        "summary": spec.summary,
        "description": (
            f"Key: `{spec.key_field}`. Producers: {spec.producers}. "
            f"Consumers: {spec.consumers}."
            + (
                " Compacted: the latest event per key is the current state."
                if spec.compacted
                else ""
            )
        ),
        "parameters": _prefix_parameter(),
        "messages": {
            event.__name__: {"$ref": f"#/components/messages/{event.__name__}"}
            for event in spec.events
        },
    }
    if spec.compacted:
        channel["bindings"] = {
            "kafka": {
                "topicConfiguration": {"cleanup.policy": ["compact"]},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        }
    return channel


def _dlq_channel(spec: TopicSpec) -> dict[str, Any]:
    return {
        "address": "{prefix}" + spec.name + DLQ_SUFFIX,
        "title": spec.name + DLQ_SUFFIX,
        "summary": f"Records of {spec.name} that a consumer refused, with the reason.",
        "parameters": _prefix_parameter(),
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }


def _message(event: type[Event], spec: TopicSpec) -> dict[str, Any]:
    doc = (event.__doc__ or "").strip()
    summary, _, rest = doc.partition("\n\n")
    message: dict[str, Any] = {
        "name": event.__name__,
        "title": event.__name__,
        "summary": " ".join(summary.split()),
        "contentType": "application/json",
        "payload": {"$ref": _REF.format(model=event.__name__)},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The event's `{spec.key_field}`.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {
                "name": f"{event.__name__}Example",
                "payload": EXAMPLES[event].model_dump(mode="json"),
            }
        ],
    }
    if rest:
        message["description"] = " ".join(rest.split())
    return message


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line text so the document reads well in review."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_yaml(document: dict[str, Any]) -> str:
    header = "# Generated by `xerosync asyncapi` from shared/contracts. Do not edit.\n"
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body
