"""Reads cached as the contracts declare (`(protomesh.options.v1.cache)`), invalidated by the writes' domain
events through generations every replica shares. See docs/caching.md."""

from chassis.caching.replica_cache import NOT_MODIFIED_HEADER, ReplicaCache, etag_of, matches
from chassis.caching.rules import CacheDeclarationError, CacheRule, cached_methods, method_rule, rule_of
from chassis.caching.writes import note_event

__all__ = ["NOT_MODIFIED_HEADER", "CacheDeclarationError", "CacheRule", "ReplicaCache", "cached_methods", "etag_of",
           "matches", "method_rule", "note_event", "rule_of"]
