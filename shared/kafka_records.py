"""Batch subscribers that hand raw records to a use case, which parses each record itself
(into a contract event, or into a DLQ reason)."""

import dataclasses
from typing import Any

from aiokafka import ConsumerRecord


async def tolerant_batch_parser(records: tuple[ConsumerRecord[Any, Any], ...], parse: Any) -> Any:
    """FastStream decodes header values as strict UTF-8; one producer's binary header
    would fail every delivery of its batch forever. Give the parser a lenient view; the
    DLQ still receives the original header bytes."""
    if all(_utf8_headers(record) for record in records):
        return await parse(records)
    message = await parse(tuple(_lenient(record) for record in records))
    message.raw_message = records  # the use case and the DLQ see the original bytes
    return message


async def raw_records(message: Any, _decode: Any) -> Any:
    """The use case parses each record itself (into contract events, or into a DLQ reason);
    FastStream's JSON decoding of the whole batch would be wasted work."""
    return message.raw_message


def _utf8_headers(record: ConsumerRecord[Any, Any]) -> bool:
    try:
        for _, value in record.headers or ():
            value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _lenient(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    if _utf8_headers(record):
        return record
    return dataclasses.replace(
        record,
        headers=[(name, value.decode(errors="replace").encode()) for name, value in record.headers],
    )
