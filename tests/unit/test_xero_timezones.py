"""Every time zone Xero can report for an organisation maps to a zone Python can load."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.xero_timezones import XERO_TO_IANA
from tests.xero_openapi import DOCUMENT_FILES, load_document, openapi_dir_or_skip


def _spec_time_zones() -> list[str]:
    document = load_document(openapi_dir_or_skip() / DOCUMENT_FILES["accounting"])
    return [str(name) for name in document["components"]["schemas"]["TimeZone"]["enum"]]


def test_every_time_zone_of_the_spec_is_mapped() -> None:
    missing = [name for name in _spec_time_zones() if name not in XERO_TO_IANA]
    assert missing == []


def test_the_table_holds_only_the_spec_time_zones() -> None:
    """A misspelt key would never match what Xero sends."""
    assert sorted(set(XERO_TO_IANA) - set(_spec_time_zones())) == []


@pytest.mark.parametrize("iana", sorted(set(XERO_TO_IANA.values())))
def test_every_zone_loads(iana: str) -> None:
    ZoneInfo(iana)


@pytest.mark.parametrize(
    ("xero", "offset_hours"),
    [
        ("CHINASTANDARDTIME", 8),
        ("UTC+12", 12),  # Etc/GMT-12: POSIX signs are inverted
        ("UTC02", -2),
        ("UTC11", -11),
        ("DATELINESTANDARDTIME", -12),
        ("LINEISLANDSSTANDARDTIME", 14),
        ("RUSSIATIMEZONE3", 4),
        ("INDIASTANDARDTIME", 5.5),
        ("NEPALSTANDARDTIME", 5.75),
        ("CENTRALSTANDARDTIME(MEXICO)", -6),
    ],
)
def test_offsets_follow_the_windows_zone(xero: str, offset_hours: float) -> None:
    """Zones without daylight saving, checked in January: the sign is the usual trap."""
    offset = datetime(2025, 1, 15, 12, tzinfo=ZoneInfo(XERO_TO_IANA[xero])).utcoffset()
    assert offset == timedelta(hours=offset_hours)
