"""The gateway's part of caching (docs/caching.md): a cached read whose If-None-Match matched becomes a 304.

The replica decides (chassis.caching: it knows the answer's ETag, whether from its cache or just computed)
and marks the answer with `x-protomesh-not-modified: 1`; Envoy cannot say 304 through the transcoder, which
maps only gRPC statuses. This Lua filter, before the transcoder in the chain (so it sees the transcoded
response on the way out), turns a marked REST answer into `304 Not Modified` with no body, keeping `ETag`
and `Cache-Control` (RFC 9110 15.4.5). Native gRPC answers keep their body and the marker as metadata. It
runs only on the REST routes of cached reads: every other route turns it off.
"""

from __future__ import annotations

from typing import Any

from chassis.caching import NOT_MODIFIED_HEADER, method_rule
from chassis.tooling.catalog import MeshMethod

NOT_MODIFIED_FILTER = "protomesh.not_modified"
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"

_LUA = """
function envoy_on_response(handle)
  local headers = handle:headers()
  if headers:get("$MARK") == nil then return end
  headers:remove("$MARK")
  local content_type = headers:get("content-type")
  if content_type and string.find(content_type, "^application/grpc") then return end
  headers:replace(":status", "304")
  headers:remove("content-type")
  headers:remove("content-length")
  local body = handle:body(true)
  if body then body:setBytes("") end
end
"""


def not_modified_filter() -> dict[str, Any]:
    """The HTTP filter; place it before the transcoder."""
    return {"name": NOT_MODIFIED_FILTER, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": _LUA.replace("$MARK", NOT_MODIFIED_HEADER)}}}


def route_filter_configs(method: MeshMethod | None, rest: bool) -> dict[str, Any]:
    """typed_per_filter_config of a route: the filter off unless it is a REST route of a cached read."""
    if rest and method is not None and method_rule(method.grpc_path) is not None:
        return {}
    return {NOT_MODIFIED_FILTER: {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}


def apply(config: dict[str, Any], methods: dict[str, MeshMethod]) -> None:
    """Add the filter before the transcoder and turn it off on every route but cached reads' REST ones (in place)."""
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                hcm = network_filter["typed_config"]
                filters = hcm["http_filters"]
                names = [f["name"] for f in filters]
                if TRANSCODER not in names:
                    continue
                filters.insert(names.index(TRANSCODER), not_modified_filter())
                for host in hcm["route_config"]["virtual_hosts"]:
                    for route in host["routes"]:
                        name = route.get("name", "")
                        method = methods.get(name.split(" ")[0])
                        route.setdefault("typed_per_filter_config", {}).update(
                            route_filter_configs(method, rest=" REST " in name))
