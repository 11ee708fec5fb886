"""Paging as both of Xero's APIs page a list: pages count from 1, `pageSize` items a page.

Each API answers with its own `pagination` object around this; they differ in their default
and largest page sizes and in what `itemCount` counts (see each router).
"""

from typing import TypeVar

T = TypeVar("T")


def page_of(items: list[T], page: int, size: int) -> tuple[list[T], int]:
    """Page `page` (from 1) of `items` at `size` a page, and how many pages there are."""
    return items[(page - 1) * size : page * size], (len(items) + size - 1) // size
