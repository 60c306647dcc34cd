"""Rate limits at the gateway, declared once per route class; chassis.tooling.envoy_config generates them.

Every route belongs to one class, read from its method's contract: `public` (declared public: health,
discovery, the OAuth endpoints), `read` (NO_SIDE_EFFECTS) or `write` (everything else). A class gives each
caller a token bucket of its own, keyed by who the gateway verified:

* a bearer token: its subject (`sub` from jwt_authn's verified payload, so all of one principal's tokens
  share the bucket);
* an API key: the claims ext_authz got back for it from the identity service (one per key);
* no credential (public routes only: other routes refuse it first): the client's address, as Envoy sees the
  connection (X-Forwarded-For from the client is not trusted for it).

None of these keys can be chosen by a client: they come from filter metadata and a header Envoy itself
sets after removing any client-sent copy. One Envoy `local_ratelimit` filter per class (on only on its routes)
holds the class's buckets, so each class has its own stats (`ratelimit_<class>.http_local_rate_limit.*` on
the admin port's /stats/prometheus). Over the limit: 429 with `Retry-After`, `RateLimit-Policy`,
`RateLimit` (draft-ietf-httpapi-ratelimit-headers) and Envoy's `x-ratelimit-*` on every answer; a native
gRPC call gets RESOURCE_EXHAUSTED (Envoy's default for a 429 would be UNAVAILABLE, which clients retry).

`PROTOMESH_RATE_LIMITS` overrides the numbers where the gateway config is generated, e.g.
`read=5/1s:10,write=2/1s` (requests per period, then the burst) or `off` (the benchmark measures the
gateway without limits).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any

from chassis.identity import CLAIMS_HEADER
from chassis.tooling.catalog import MeshMethod
from chassis.tooling.gateway_auth import EXT_AUTHZ, JWT_AUTHN, PAYLOAD_METADATA

LOCAL_RATELIMIT = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
OVERRIDE_ENV = "PROTOMESH_RATE_LIMITS"
API_KEY_METADATA = CLAIMS_HEADER
"""Where ext_authz leaves the claims of a verified API key in its dynamic metadata (gateway_auth)."""


@dataclass(frozen=True)
class RouteClass:
    """One class of routes and the bucket each caller gets on them."""

    name: str
    requests: int
    """Tokens added each period."""
    period_seconds: int
    """Refill period (whole seconds: it is also the Retry-After a refused caller is told)."""
    burst: int
    """Bucket size: how many calls a caller may make at once after a quiet period."""

    @property
    def filter_name(self) -> str:
        """This class's filter in the chain."""
        return f"protomesh.ratelimit.{self.name}"

    @property
    def policy(self) -> str:
        """`RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): quota and window of the class."""
        return f'"{self.name}";q={self.requests};w={self.period_seconds}'


PUBLIC = RouteClass("public", requests=200, period_seconds=1, burst=400)
"""Unauthenticated endpoints (health, discovery, OAuth): per client address when no credential comes (one
address may be a whole office behind NAT, so not tight)."""
READ = RouteClass("read", requests=1000, period_seconds=1, burst=2000)
"""Reads: cheap and often cached, so the most generous; a client polling in a loop stays far below."""
WRITE = RouteClass("write", requests=200, period_seconds=1, burst=400)
"""Everything that changes state (and executions, integration calls): each costs a transaction and events."""


@dataclass(frozen=True)
class RateLimits:
    """The gateway's rate limits: the classes, in stage order."""

    classes: tuple[RouteClass, ...] = (PUBLIC, READ, WRITE)
    max_callers: int = 10_000
    """Buckets each class keeps (least recently used out: a caller evicted starts a full bucket again)."""
    enabled: bool = True

    def class_of(self, method: MeshMethod | None) -> RouteClass | None:
        """The class of a method's routes (None: no method, e.g. reflection, or limits off)."""
        if not self.enabled or method is None:
            return None
        wanted = "public" if method.public else "read" if method.idempotency_level == "NO_SIDE_EFFECTS" else "write"
        return next((c for c in self.classes if c.name == wanted), None)


_OVERRIDE = re.compile(r"(?P<name>[a-z]+)=(?P<requests>\d+)/(?P<period>\d+)s(?::(?P<burst>\d+))?")


def configured(env: dict[str, str] | None = None) -> RateLimits:
    """The defaults, with PROTOMESH_RATE_LIMITS applied; a malformed override is refused naming it."""
    value = (os.environ if env is None else env).get(OVERRIDE_ENV, "").strip()
    limits = RateLimits()
    if not value:
        return limits
    if value == "off":
        return dataclasses.replace(limits, enabled=False)
    classes = {c.name: c for c in limits.classes}
    for part in value.split(","):
        match = _OVERRIDE.fullmatch(part.strip())
        if match is None or match["name"] not in classes or int(match["period"]) < 1:
            raise ValueError(f"{OVERRIDE_ENV}: {part!r} is not <class>=<requests>/<seconds>s[:<burst>] with a class "
                             f"of {sorted(classes)}, or 'off'")
        requests = int(match["requests"])
        classes[match["name"]] = dataclasses.replace(
            classes[match["name"]], requests=requests, period_seconds=int(match["period"]),
            burst=int(match["burst"] or requests))
    return dataclasses.replace(limits, classes=tuple(classes[c.name] for c in limits.classes))


def _any(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def caller_keys() -> list[dict[str, Any]]:
    """The filter's `rate_limits`: the three caller keys, each a descriptor only when it applies."""
    by_token = {"metadata": {"descriptor_key": "principal", "skip_if_absent": True, "metadata_key": {
        "key": JWT_AUTHN, "path": [{"key": PAYLOAD_METADATA}, {"key": "sub"}]}}}
    by_api_key = {"metadata": {"descriptor_key": "api_key", "skip_if_absent": True, "metadata_key": {
        "key": EXT_AUTHZ, "path": [{"key": API_KEY_METADATA}]}}}
    # Anonymous: Envoy sets the claims header only for a verified caller (a client's copy is removed first).
    anonymous = {"header_value_match": {"descriptor_key": "anonymous", "descriptor_value": "yes", "expect_match": False,
                                        "headers": [{"name": CLAIMS_HEADER, "present_match": True}]}}
    return [{"actions": [by_token]}, {"actions": [by_api_key]}, {"actions": [anonymous, {"remote_address": {}}]}]


def route_filter_configs(route_class: RouteClass | None, limits: RateLimits) -> dict[str, Any]:
    """typed_per_filter_config of a route: every other class's filter off (its own stays on; None: all off)."""
    if not limits.enabled:
        return {}
    return {c.filter_name: _any("envoy.config.route.v3.FilterConfig", disabled=True)
            for c in limits.classes if c != route_class}


def _bucket(route_class: RouteClass) -> dict[str, Any]:
    return {"max_tokens": route_class.burst, "tokens_per_fill": route_class.requests,
            "fill_interval": f"{route_class.period_seconds}s"}


def rate_limit_filters(limits: RateLimits) -> list[dict[str, Any]]:
    """One local_ratelimit filter per class; after the credential checks (the keys are what they verified)."""
    if not limits.enabled:
        return []
    return [{"name": c.filter_name, "typed_config": _filter_config(c, limits)} for c in limits.classes]


def _filter_config(route_class: RouteClass, limits: RateLimits) -> dict[str, Any]:
    on = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    keys = ([{"key": "principal", "value": ""}], [{"key": "api_key", "value": ""}],
            [{"key": "anonymous", "value": "yes"}, {"key": "remote_address", "value": ""}])
    headers = [("retry-after", str(route_class.period_seconds)), ("ratelimit-policy", route_class.policy),
               ("ratelimit", f'"{route_class.name}";r=0;t={route_class.period_seconds}')]
    return _any(
        LOCAL_RATELIMIT,
        stat_prefix=f"ratelimit_{route_class.name}",
        # The keys are the filter's own (Envoy 1.40 deprecates taking them from the routes); the route only
        # turns the filter of its class on. A request yielding no key is not limited by a shared bucket: the
        # default one is never consumed.
        rate_limits=caller_keys(),
        token_bucket={"max_tokens": 1_000_000, "tokens_per_fill": 1_000_000, "fill_interval": "1s"},
        always_consume_default_token_bucket=False,
        filter_enabled={**on, "runtime_key": f"protomesh.ratelimit.{route_class.name}.enabled"},
        filter_enforced={**on, "runtime_key": f"protomesh.ratelimit.{route_class.name}.enforced"},
        descriptors=[{"entries": key, "token_bucket": _bucket(route_class)} for key in keys],
        max_dynamic_descriptors=limits.max_callers,
        rate_limited_as_resource_exhausted=True,
        enable_x_ratelimit_headers="DRAFT_VERSION_03",
        response_headers_to_add=[{"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                                 for key, value in headers],
    )


def _method_of(route: dict[str, Any], methods: dict[str, MeshMethod]) -> MeshMethod | None:
    # envoy_config names a method's routes by its gRPC path (`/pkg.S/M`, `/pkg.S/M REST 0`, `/pkg.S/M keyed`).
    return methods.get(route.get("name", "").split(" ")[0])


def apply(config: dict[str, Any], methods: dict[str, MeshMethod], limits: RateLimits) -> None:
    """Add the class filters after the credential checks and turn on, on each route, its class's (in place).

    Routes without a method: a package's catch-all on the gRPC path serves the writes that have no exact
    route (class `write`); reflection and the HTTP-served OAuth endpoints are `public`.
    """
    if not limits.enabled:
        return
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                hcm = network_filter["typed_config"]
                filters = hcm["http_filters"]
                names = [f["name"] for f in filters]
                after = names.index(EXT_AUTHZ) + 1 if EXT_AUTHZ in names else 1
                filters[after:after] = rate_limit_filters(limits)
                for host in hcm["route_config"]["virtual_hosts"]:
                    for route in host["routes"]:
                        route.setdefault("typed_per_filter_config", {}).update(
                            route_filter_configs(_route_class(route, methods, limits), limits))


def _route_class(route: dict[str, Any], methods: dict[str, MeshMethod], limits: RateLimits) -> RouteClass | None:
    if "route" not in route:
        return None  # direct responses (API documents, unknown paths) reach no replica
    method = _method_of(route, methods)
    if method is not None:
        return limits.class_of(method)
    by_name = {c.name: c for c in limits.classes}
    # A package's catch-all on the gRPC path serves the writes without an exact route.
    catch_all = route["match"].get("prefix", "").startswith("/protomesh.")
    return by_name.get("write" if catch_all else "public")


def grpc_resource_exhausted() -> dict[str, Any]:
    """A local-reply mapper (envoy_config puts it first): a native gRPC call another filter refused with 429
    (ext_authz: an API key over its own rate) gets RESOURCE_EXHAUSTED, as the class filters' refusals do,
    instead of the UNAVAILABLE Envoy maps 429 to, which clients take for an outage and retry at once."""
    return {
        "filter": {"and_filter": {"filters": [
            {"header_filter": {"header": {"name": "content-type", "string_match": {"prefix": "application/grpc"}}}},
            {"status_code_filter": {"comparison": {"op": "EQ", "value": {
                "default_value": 429, "runtime_key": "protomesh.local_reply.grpc_429"}}}},
        ]}},
        "headers_to_add": [{"header": {"key": "grpc-status", "value": "8"},
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
    }
