"""Strict JSON at the gateway: a REST body field the contract does not know, or of the wrong JSON type, is 400.

Envoy's grpc_json_transcoder drops a body field it does not know (envoy#46623; no option of it refuses
one), so a typo was accepted and ignored, and `{"organization_id": "<another org>"}` in an update answered
200 instead of being refused. A small Lua filter, just before the transcoder, walks the body of every
transcoded REST route that has one, against the set of JSON names the request message may hold, generated
here from the same descriptor set Envoy loads (never written by hand):

* every field by its proto name and its lowerCamel json_name, recursively into nested messages, repeated
  messages' items and map values;
* free-form where the contract is: google.protobuf.Struct, Value, ListValue, Any, Empty;
* other well-known types as their JSON forms (Timestamp, Duration, FieldMask: strings; wrappers: their
  primitive).

What it finds is answered like the services' own INVALID_ARGUMENT (chassis.errors.InvalidArgument, as the
transcoder prints it): a google.rpc.Status JSON with ErrorInfo and a google.rpc.BadRequest naming each
field by its path (`organization_id`, `config.base_url`, `items[2].name`, `labels["k"]`). JSON types are
checked where cheap: a string, number, boolean, object or array where the field's kind wants another one
(numbers may also be strings and enums numbers, as proto3 JSON allows; null is always let through). A body
that is not well-formed JSON is let through untouched: the transcoder's own 400 says what is wrong.

The route carries the request message's name in its metadata (`route_metadata`); routes without it (reads,
native gRPC) cost the filter one metadata lookup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from chassis.errors import MAX_VIOLATIONS
from chassis.tooling.catalog import Catalog, HttpRule, MeshMethod

STRICT_JSON_FILTER = "protomesh.strict_json"
"""The filter's name in the chain, and the namespace of its route metadata and of the dynamic metadata
that marks its refusals (the local-reply mapper passes their JSON body through untouched)."""
REFUSED_KEY = "refused"
MAX_DEPTH = 100
"""Nesting beyond this is left to the transcoder (protobuf's own recursion limit is 100)."""

# Proto field kinds as the Lua walker's one-letter kinds: S string, N number (or a string, as proto3 JSON
# allows), B boolean, E enum (name or number), M message (walked with its own fields), O free-form object,
# A free-form array, F any JSON value.
_WELL_KNOWN = {
    "google.protobuf.Timestamp": "S", "google.protobuf.Duration": "S", "google.protobuf.FieldMask": "S",
    "google.protobuf.Struct": "O", "google.protobuf.Any": "O", "google.protobuf.Empty": "O",
    "google.protobuf.ListValue": "A", "google.protobuf.Value": "F",
    "google.protobuf.StringValue": "S", "google.protobuf.BytesValue": "S", "google.protobuf.BoolValue": "B",
    **{f"google.protobuf.{name}Value": "N" for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32")},
}
_SCALAR = {FieldDescriptor.TYPE_STRING: "S", FieldDescriptor.TYPE_BYTES: "S", FieldDescriptor.TYPE_BOOL: "B",
           FieldDescriptor.TYPE_ENUM: "E"}


def load_pool(descriptor_set: Path) -> descriptor_pool.DescriptorPool:
    """A pool of exactly the descriptor set Envoy's transcoder loads."""
    files = descriptor_pb2.FileDescriptorSet.FromString(Path(descriptor_set).read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def body_message(pool: descriptor_pool.DescriptorPool, method: MeshMethod, rule: HttpRule) -> str | None:
    """The message a REST binding's body holds: the request ("*"), a message field's type, or None (none/scalar)."""
    if not rule.body or method.client_streaming:
        return None
    request = pool.FindMessageTypeByName(method.input_type)
    if rule.body == "*":
        return str(request.full_name)
    field = request.fields_by_name.get(rule.body)
    if field is None or field.message_type is None or field.is_repeated:
        return None
    kind = _kind(field.message_type)
    return str(field.message_type.full_name) if kind == "M" else None


def route_metadata(message: str) -> dict[str, Any]:
    """A REST route's metadata telling the filter which message its body holds."""
    return {"filter_metadata": {STRICT_JSON_FILTER: {"message": message}}}


def _kind(message: Descriptor) -> str:
    return _WELL_KNOWN.get(message.full_name, "M")


def _element(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        kind = _kind(field.message_type)
        return f'{{"M","{field.message_type.full_name}"}}' if kind == "M" else f'{{"{kind}"}}'
    if field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue":
        return '{"F"}'
    return f'{{"{_SCALAR.get(field.type, "N")}"}}'


def _spec(field: FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return f'{{"{{",{_element(field.message_type.fields_by_name["value"])}}}'
    if field.is_repeated:
        return f'{{"[",{_element(field)}}}'
    return _element(field)


def _schemas(pool: descriptor_pool.DescriptorPool, roots: set[str]) -> dict[str, dict[str, str]]:
    """Message name -> {JSON name (proto name and json_name) -> Lua spec}, for the roots and all they reach."""
    schemas: dict[str, dict[str, str]] = {}
    pending = sorted(roots)
    while pending:
        message = pool.FindMessageTypeByName(pending.pop())
        if message.full_name in schemas:
            continue
        fields: dict[str, str] = {}
        for field in message.fields:
            spec = _spec(field)
            fields[field.name] = fields[field.json_name] = spec
            value = (field.message_type.fields_by_name["value"]
                     if field.message_type is not None and field.message_type.GetOptions().map_entry else field)
            if value.message_type is not None and _kind(value.message_type) == "M":
                pending.append(value.message_type.full_name)
        schemas[message.full_name] = fields
    return schemas


def body_messages(catalog: Catalog, pool: descriptor_pool.DescriptorPool | None = None) -> set[str]:
    """Every message a transcoded REST body holds."""
    pool = pool or load_pool(catalog.descriptor_set)
    return {name for method in catalog.methods() for rule in method.http_rules
            if (name := body_message(pool, method, rule)) is not None}


def lua_source(catalog: Catalog, descriptor_set: Path | None = None) -> str:
    """The filter's Lua: the generated schemas, then the walker (_WALKER)."""
    pool = load_pool(descriptor_set or catalog.descriptor_set)
    schemas = _schemas(pool, body_messages(catalog, pool))
    lines = ["local M = {}"]
    for name, fields in sorted(schemas.items()):
        entries = ",".join(f'["{key}"]={spec}' for key, spec in sorted(fields.items()))
        lines.append(f'M["{name}"] = {{{entries}}}')
    return "\n".join(lines) + "\n" + _WALKER.replace("$MAXV", str(MAX_VIOLATIONS)).replace(
        "$MAXDEPTH", str(MAX_DEPTH)).replace("$NS", STRICT_JSON_FILTER).replace("$KEY", REFUSED_KEY)


def strict_json_filter(catalog: Catalog, descriptor_set: Path | None = None) -> dict[str, Any]:
    """The HTTP filter (before the transcoder; after the body limits, so it never buffers an oversized body)."""
    return {"name": STRICT_JSON_FILTER, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": lua_source(catalog, descriptor_set)}}}


def local_reply_passthrough() -> dict[str, Any]:
    """A local-reply mapper (first in the list) keeping the filter's JSON refusal as it is.

    Matched on dynamic metadata the filter sets, which a client cannot: a client header could make any
    other local reply claim to be JSON.
    """
    return {
        "filter": {"metadata_filter": {
            "matcher": {"filter": STRICT_JSON_FILTER, "path": [{"key": REFUSED_KEY}],
                        "value": {"bool_match": True}},
            "match_if_key_not_found": False}},
        "body_format_override": {"text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                                 "content_type": "application/json"},
    }


# The walker: a one-pass recursive-descent JSON reader that checks names and kinds as it goes (Envoy's
# LuaJIT has no JSON library). It returns the index after a value, or nil when the body is not JSON.
_WALKER = r"""
local find, sub, byte, char, concat, format, floor = string.find, string.sub, string.byte, string.char,
  table.concat, string.format, math.floor
local S, V
local MAXV, MAXDEPTH = $MAXV, $MAXDEPTH

local function ws(i) local _, e = find(S, "^[ \t\n\r]*", i) return e + 1 end

local QUOTED = {['"'] = '\\"', ["\\"] = "\\\\"}
local function quote(s)
  return '"' .. (s:gsub('[%z\1-\31"\\]', function(c) return QUOTED[c] or format("\\u%04x", byte(c)) end)) .. '"'
end

local function utf8(c)
  if c < 0x80 then return char(c) end
  if c < 0x800 then return char(0xC0 + floor(c / 64), 0x80 + c % 64) end
  if c < 0x10000 then return char(0xE0 + floor(c / 4096), 0x80 + floor(c / 64) % 64, 0x80 + c % 64) end
  return char(0xF0 + floor(c / 262144), 0x80 + floor(c / 4096) % 64, 0x80 + floor(c / 64) % 64, 0x80 + c % 64)
end

local ESC = {[34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r",
  [116] = "\t"}

-- The string whose quote (" or ') is at i: its text when `decode` (else true), and the index after it.
-- As lenient as the transcoder's parser (raw control characters, single quotes, unknown escapes): a body
-- it reads must not escape the walker, or a field beside the oddity would go unchecked.
local function str(i, decode)
  local j, parts, q = i + 1, nil, byte(S, i)
  local stop = q == 34 and '["\\]' or "['\\]"
  while true do
    local a = find(S, stop, j)
    if not a then return nil end
    local c = byte(S, a)
    if c == q then
      if not decode then return true, a + 1 end
      if not parts then return sub(S, j, a - 1), a + 1 end
      parts[#parts + 1] = sub(S, j, a - 1)
      return concat(parts), a + 1
    end
    parts = parts or {}
    parts[#parts + 1] = sub(S, j, a - 1)
    local e = byte(S, a + 1)
    if e == 117 then
      local h = sub(S, a + 2, a + 5)
      if not find(h, "^%x%x%x%x$") then return nil end
      local code = tonumber(h, 16)
      j = a + 6
      if code >= 0xD800 and code < 0xDC00 and find(S, "^\\u[dD][c-fC-F]%x%x", j) then
        code = 0x10000 + (code - 0xD800) * 1024 + tonumber(sub(S, j + 2, j + 5), 16) - 0xDC00
        j = j + 6
      end
      parts[#parts + 1] = utf8(code)
    elseif e then -- an unknown escape stands for its character, as in the transcoder's parser
      parts[#parts + 1] = ESC[e] or char(e)
      j = a + 2
    else
      return nil
    end
  end
end

-- A number, leniently (the transcoder takes `1.`; what it refuses it still refuses after the walker).
local function num(i)
  local _, e = find(S, "^[-+]?[%d.]+", i)
  if not e then return nil end
  local _, f = find(S, "^[eE][-+]?%d+", e + 1)
  return (f or e) + 1
end

local function violate(path, text)
  if #V < MAXV then V[#V + 1] = {path, text} end
end

-- What each kind accepts, and how a refusal names what was wanted and what came.
local ACCEPT = {S = {S = 1}, N = {N = 1, S = 1}, B = {B = 1}, E = {S = 1, N = 1}, M = {O = 1}, O = {O = 1},
  A = {A = 1}, ["["] = {A = 1}, ["{"] = {O = 1}, F = {S = 1, N = 1, B = 1, O = 1, A = 1}}
local WANT = {S = "a string", N = "a number", B = "true or false", E = "an enum value name or number",
  M = "an object", O = "an object", A = "an array", ["["] = "an array", ["{"] = "an object (a map)"}
local GOT = {S = "a string", N = "a number", B = "a boolean", O = "an object", A = "an array"}

local value

-- The object whose brace is at i: its keys checked against `fields` (a message), or each value
-- against `item` (a map), or nothing (free-form: fields and item both nil).
local function object(i, fields, item, path, depth)
  i = ws(i + 1)
  if byte(S, i) == 125 then return i + 1 end
  while true do
    local key, j
    local q = byte(S, i)
    if q == 34 or q == 39 then
      key, j = str(i, true)
    else -- an unquoted name, which the transcoder takes too
      local _, e = find(S, "^[%a_$][%w_$]*", i)
      if e then key, j = sub(S, i, e), e + 1 end
    end
    if not key then return nil end
    j = ws(j)
    if byte(S, j) ~= 58 then return nil end
    local spec, at = item, nil
    if fields then
      spec = fields[key]
      at = path and path .. "." .. key or key
      if not spec then
        violate(at, "no such field: the contract does not know it, and the gateway does not drop it silently; "
          .. "GET /openapi.json lists this operation's fields")
      end
    elseif item then
      at = path .. "[" .. quote(key) .. "]"
    end
    j = value(ws(j + 1), spec, at, depth)
    if not j then return nil end
    j = ws(j)
    local c = byte(S, j)
    if c == 125 then return j + 1 end
    if c ~= 44 then return nil end
    i = ws(j + 1)
    if byte(S, i) == 125 then return i + 1 end -- a trailing comma, which the transcoder takes
  end
end

local function array(i, item, path, depth)
  i = ws(i + 1)
  if byte(S, i) == 93 then return i + 1 end
  local n = 0
  while true do
    i = value(i, item, item and path .. "[" .. n .. "]", depth)
    if not i then return nil end
    i = ws(i)
    local c = byte(S, i)
    if c == 93 then return i + 1 end
    if c ~= 44 then return nil end
    i = ws(i + 1)
    if byte(S, i) == 93 then return i + 1 end
    n = n + 1
  end
end

-- The value at i, checked against spec ({kind, ...}; nil: anything goes); the index after it.
value = function(i, spec, path, depth)
  if depth > MAXDEPTH then return nil end
  local c = byte(S, i)
  local got = c == 123 and "O" or c == 91 and "A" or (c == 34 or c == 39) and "S" or (c == 116 or c == 102) and "B"
    or c == 110 and "0" or "N"
  local kind = spec and spec[1]
  if kind and got ~= "0" and not ACCEPT[kind][got] then
    violate(path, "expected " .. WANT[kind] .. ", got " .. GOT[got])
    kind = nil
  end
  if got == "O" then
    if kind == "M" then return object(i, M[spec[2]] or {}, nil, path, depth + 1) end
    if kind == "{" then return object(i, nil, spec[2], path, depth + 1) end
    return object(i, nil, nil, nil, depth + 1)
  elseif got == "A" then
    return array(i, kind == "[" and spec[2] or nil, path, depth + 1)
  elseif got == "S" then
    local _, j = str(i, false)
    return j
  elseif c == 116 then
    return sub(S, i, i + 3) == "true" and i + 4 or nil
  elseif c == 102 then
    return sub(S, i, i + 4) == "false" and i + 5 or nil
  elseif c == 110 then
    return sub(S, i, i + 3) == "null" and i + 4 or nil
  end
  return num(i)
end

-- google.rpc.Status JSON as the transcoder prints chassis.errors.InvalidArgument.
local function refusal(found)
  local summary, violations = {}, {}
  for k, v in ipairs(found) do
    summary[k] = v[1] .. ": " .. v[2]
    violations[k] = '{"field":' .. quote(v[1]) .. ',"description":' .. quote(v[2]) .. "}"
  end
  return '{"code":3,"message":' .. quote("invalid request: " .. concat(summary, "; "))
    .. ',"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ERROR_REASON_INVALID_ARGUMENT",'
    .. '"domain":"protomesh","metadata":{}},{"@type":"type.googleapis.com/google.rpc.BadRequest",'
    .. '"field_violations":[' .. concat(violations, ",") .. "]}]}"
end

function envoy_on_request(handle)
  local message = handle:metadata():get("message")
  if not message then return end
  local content_type = handle:headers():get("content-type")
  if content_type and find(content_type, "^application/grpc") then return end
  local body = handle:body()
  if not body then return end
  local length = body:length()
  if length == 0 then return end
  S, V = body:getBytes(0, length), {}
  local start = ws(1)
  local stop = byte(S, start) == 123 and object(start, M[message], nil, nil, 1)
  local found = V
  local whole = stop and ws(stop) > length
  S, V = nil, nil
  if not whole or #found == 0 then return end -- not JSON: the transcoder answers
  handle:streamInfo():dynamicMetadata():set("$NS", "$KEY", true)
  handle:respond({[":status"] = "400", ["content-type"] = "application/json"}, refusal(found))
end
"""
