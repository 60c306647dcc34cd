"""The resource toolkit every service uses: update masks, keyset paging, ids and optimistic concurrency.

- masks: `UpdateMask.of(UpdateXRequest, resource=X).paths(request, v)`
- paging (servicer side): `Keyset`, `Key`, `PageRequest`, `Page`, `page_size`
- keyset (SQL side): `fetch_page`, `page_query`, `after_condition`, `order_by`
- ids: `resource_id`, `found`, `optional_id`, `parse_uuid`
- versions: `check_expected_version`, `check_version`

The SQL side is imported from chassis.resources.keyset, so a servicer's import does not load psycopg.
"""

from __future__ import annotations

from chassis.resources.ids import found, optional_id, parse_uuid, resource_id
from chassis.resources.masks import UpdateMask
from chassis.resources.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Key, Keyset, Page, PageRequest, page_size
from chassis.resources.versions import check_expected_version, check_version

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Key",
    "Keyset",
    "Page",
    "PageRequest",
    "UpdateMask",
    "check_expected_version",
    "check_version",
    "found",
    "optional_id",
    "page_size",
    "parse_uuid",
    "resource_id",
]
