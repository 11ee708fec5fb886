"""Turning a record's bytes into a contract event, or into a reason a producer can act on."""

from pydantic import ValidationError

from .base import ENVELOPE, Event
from .topics import TopicSpec

DEFAULT_MAX_EVENT_BYTES = 64 * 1024


class InvalidEvent(ValueError):
    """The record is not a valid event of its topic; `reason` says why, without echoing
    the record's content (which may hold personal data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_event(spec: TopicSpec, raw: bytes | None, *, max_bytes: int) -> Event:
    if not raw:
        raise InvalidEvent("empty record: expected a JSON event")
    if len(raw) > max_bytes:
        raise InvalidEvent(f"record is {len(raw)} bytes; events may be at most {max_bytes} bytes")
    try:
        event: Event = spec.adapter.validate_json(raw)
    except ValidationError as error:
        raise InvalidEvent(explain(error, spec)) from None
    # Python callers get envelope defaults; on the wire the producer must send them.
    if missing := [name for name in ENVELOPE if name not in event.model_fields_set]:
        raise InvalidEvent(f"{', '.join(missing)}: Field required")
    return event


def explain(error: ValidationError, spec: TopicSpec) -> str:
    """One line per problem, `field: message`, without the offending input."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        kind = item["type"]
        location = [str(part) for part in item["loc"]]
        # A discriminated union prefixes the location with the event name; drop it.
        if location and location[0] in {event.__name__ for event in spec.events}:
            location = location[1:]
        field = ".".join(location) or "event"
        if kind == "json_invalid":
            message = f"not valid JSON ({item.get('ctx', {}).get('error', 'parse error')})"
            field = "record"
        elif kind in {"union_tag_not_found", "union_tag_invalid"}:
            names = ", ".join(event.__name__ for event in spec.events)
            message = f"`type` must be one of {names}"
            field = "type"
        elif kind == "model_type":
            message = "must be a JSON object"
        else:
            message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return "; ".join(problems)
