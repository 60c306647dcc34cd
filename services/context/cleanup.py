"""The periodic cleanup job: expire contexts past their expiry, drop old usage counters.

Expired contexts are kept as EXPIRED rows (name, owner, counters, usage history stay
queryable for analytics) and their layers are deleted. Every replica runs the job; the
expiring UPDATE skips rows another replica holds, so running it twice at once is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import random

from services.context.store import ContextStore

logger = logging.getLogger(__name__)

BATCH = 500


async def clean_once(store: ContextStore, usage_retention_days: int) -> tuple[int, int]:
    """Expire every due context (in batches) and prune usage; return (contexts expired, layers deleted)."""
    expired = removed = 0
    while True:
        batch_expired, batch_removed = await store.cleanup.expire_due(BATCH)
        expired, removed = expired + batch_expired, removed + batch_removed
        if batch_expired < BATCH:
            break
    pruned = await store.cleanup.prune_usage(usage_retention_days)
    if expired or pruned:
        logger.info("cleanup", extra={"expired_contexts": expired, "deleted_layers": removed,
                                      "pruned_usage_rows": pruned})
    return expired, removed


async def run_cleanup(store: ContextStore, interval: float, usage_retention_days: int) -> None:
    """Run clean_once every interval (with 10% jitter so replicas spread out) until cancelled."""
    while True:
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 jitter, not a secret
        try:
            await clean_once(store, usage_retention_days)
        except Exception:  # a database outage must not end the job; the next round retries
            logger.warning("cleanup failed; retrying next round", exc_info=True)
