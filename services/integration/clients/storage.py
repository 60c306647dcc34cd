"""Object storage: a local directory, or an S3-compatible API signed with AWS Signature Version 4.

Both offer the same operations on keys (put, get, head, list, delete); object contents travel
as text (`content`) or base64 (`content_base64`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import mimetypes
import os
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yarl import URL

from chassis.crypto import STATE_DIR_ENV
from chassis.errors import FailedPrecondition, NotFound, ResourceExhausted, Unavailable, Violations
from chassis.paths import RUN_DIR
from protomesh.integration.v1 import integration_pb2
from services.integration import sigv4
from services.integration.clients.base import (
    ClientSpec,
    ExternalClient,
    Operation,
    Shared,
    Steps,
    Target,
    external_error,
    flag,
    number,
    text,
    unknown_keys,
)
from services.integration.targets import TargetRefused

OPERATIONS = (
    Operation("put", idempotent=True), Operation("get", cacheable=True), Operation("head", cacheable=True),
    Operation("list", cacheable=True), Operation("delete", idempotent=True),
)
MAX_OBJECT_BYTES = 5 * 1024 * 1024
LOCAL_FIELDS = ("root*", "max_object_bytes")
S3_FIELDS = ("endpoint*", "bucket*", "region", "path_style", "max_object_bytes")
COMMON = ["resilience", "rate_limit", "cache"]
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _key_ok(key: str) -> bool:
    parts = key.split("/")
    return (0 < len(key) <= 1024 and not key.startswith("/") and "\\" not in key and "\x00" not in key
            and all(p not in ("", ".", "..") for p in parts))


def validate_params(v: Violations, operation: str, params: dict[str, Any], config: dict[str, Any]) -> None:
    """Keys are relative paths without '.', '..' or empty segments; put has content or content_base64."""
    allowed = {"put": ("key", "content", "content_base64", "content_type"), "list": ("prefix", "max_keys")}
    unknown_keys(v, params, allowed.get(operation, ("key",)), "parameters")
    if operation == "list":
        prefix = text(v, params, "prefix", "parameters.prefix", max_len=1024)
        v.check(not prefix.startswith("/") and ".." not in prefix.split("/"), "parameters.prefix",
                "must be relative, without '..'")
        number(v, params, "max_keys", "parameters.max_keys", low=1, high=1000, integer=True)
        return
    key = text(v, params, "key", "parameters.key", required=True, max_len=1024)
    v.check(not key or _key_ok(key), "parameters.key", "must be a relative path without '.', '..' or empty parts")
    if operation == "put":
        content = params.get("content")
        encoded = params.get("content_base64")
        v.check((content is None) != (encoded is None), "parameters.content", "exactly one of content, content_base64")
        v.check(content is None or isinstance(content, str), "parameters.content", "must be a string")
        if isinstance(encoded, str):
            try:
                base64.b64decode(encoded, validate=True)
            except ValueError:
                v.add("parameters.content_base64", "must be base64")
        elif encoded is not None:
            v.add("parameters.content_base64", "must be a string")
        text(v, params, "content_type", "parameters.content_type", max_len=255)


def _body(params: dict[str, Any]) -> bytes:
    if params.get("content_base64") is not None:
        return base64.b64decode(params["content_base64"])
    return str(params.get("content", "")).encode()


def _content(data: bytes, content_type: str) -> dict[str, Any]:
    try:
        return {"content": data.decode("utf-8"), "content_type": content_type}
    except UnicodeDecodeError:
        return {"content_base64": base64.b64encode(data).decode(), "content_type": content_type}


class _Storage(ExternalClient):
    """Shared operation dispatch and the put/get/delete round trip test."""

    @property
    def max_bytes(self) -> int:
        return int(self.config.get("max_object_bytes") or MAX_OBJECT_BYTES)

    async def invoke(self, operation: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        if operation == "put":
            data = _body(params)
            if len(data) > self.max_bytes:
                raise FailedPrecondition(f"the object is larger than config.max_object_bytes ({self.max_bytes})")
            return await self.put(params["key"], data, params.get("content_type") or "", timeout)
        if operation == "list":
            return await self.list(params.get("prefix") or "", int(params.get("max_keys") or 1000), timeout)
        return await getattr(self, operation)(params["key"], timeout)

    async def put(self, key: str, data: bytes, content_type: str, timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    async def get(self, key: str, timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    async def delete(self, key: str, timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    async def list(self, prefix: str, max_keys: int, timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    async def test(self, steps: Steps, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        key = f".protomesh-probe/{uuid.uuid4().hex}"
        payload = f"protomesh probe {key}".encode()

        async def reach() -> str:
            return await self.health(deadline - time.monotonic())

        async def put() -> str:
            await self.put(key, payload, "text/plain", deadline - time.monotonic())
            return f"wrote {key}"

        async def get() -> str:
            got = await self.get(key, deadline - time.monotonic())
            if got.get("content") != payload.decode():
                raise FailedPrecondition("read back different content")
            return "read it back"

        async def delete() -> str:
            await self.delete(key, deadline - time.monotonic())
            return "deleted it"

        await steps.run("reach", reach)
        await steps.run("put", put)
        await steps.run("get", get)
        await steps.run("delete", delete)


# --- local directory ---------------------------------------------------------------------------


def refused_root(root: str) -> str | None:
    """Why a directory may not be a storage root, or None. The mesh's state folder holds generated
    encryption keys, and /proc, /sys and /dev expose the process (its environment holds the mesh's
    credentials): a root at, above or below any of them would serve those as objects."""
    real = Path(os.path.realpath(root))
    state = Path(os.environ.get(STATE_DIR_ENV, "").strip() or RUN_DIR)
    for name, place in (("the mesh's state folder", state), ("/proc", Path("/proc")), ("/sys", Path("/sys")),
                        ("/dev", Path("/dev"))):
        place = Path(os.path.realpath(place))
        if real == place or real.is_relative_to(place) or place.is_relative_to(real):
            return f"{root} holds or is inside {name} ({place}); use a folder of its own for the objects"
    return None


def validate_local_config(v: Violations, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """root: an absolute directory path, apart from the mesh's own files."""
    unknown_keys(v, config, [f.rstrip("*") for f in LOCAL_FIELDS] + COMMON, "config")
    root = text(v, config, "root", "config.root", required=True, max_len=4096)
    if v.check(not root or os.path.isabs(root), "config.root", "must be an absolute path") and root:
        reason = refused_root(root)
        v.check(reason is None, "config.root", reason or "")
    number(v, config, "max_object_bytes", "config.max_object_bytes", low=1, high=256 * 1024 * 1024, integer=True)
    v.check(not credentials, "credentials", "a local directory takes no credentials")


class LocalStorageClient(_Storage):
    """Objects as files below a root directory (created on first write)."""

    def __init__(self, name: str, config: dict[str, Any], credentials: Mapping[str, str], shared: Shared) -> None:
        super().__init__(name, config, credentials, shared)
        self.root = Path(config["root"])

    def _path(self, key: str) -> Path:
        reason = refused_root(str(self.root))  # again: a symbolic link may have moved since the config was saved
        if reason is not None:
            raise TargetRefused("config.root", reason)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise FailedPrecondition(f"key {key!r} leaves the storage root")
        return path

    async def _io(self, work: Any) -> Any:
        try:
            return await asyncio.to_thread(work)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise
        except PermissionError as exc:
            raise FailedPrecondition(f"{self.name}: permission denied ({exc.strerror})") from None
        except OSError as exc:
            raise Unavailable(f"{self.name}: {exc.strerror or exc}") from None

    async def put(self, key: str, data: bytes, content_type: str, timeout: float) -> dict[str, Any]:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

        await self._io(write)
        return {"key": key, "size": len(data), "etag": hashlib.md5(data, usedforsecurity=False).hexdigest()}

    async def get(self, key: str, timeout: float) -> dict[str, Any]:
        path = self._path(key)
        try:
            size = (await self._io(path.stat)).st_size
            if size > self.max_bytes:
                raise FailedPrecondition(f"the object is larger than config.max_object_bytes ({self.max_bytes})")
            data = await self._io(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound("object", key) from None
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        return {"key": key, "size": len(data), **_content(data, content_type)}

    async def head(self, key: str, timeout: float) -> dict[str, Any]:
        path = self._path(key)
        try:
            info = await self._io(path.stat)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound("object", key) from None
        return {"key": key, "size": info.st_size,
                "last_modified": datetime.fromtimestamp(info.st_mtime, UTC).isoformat()}

    async def list(self, prefix: str, max_keys: int, timeout: float) -> dict[str, Any]:
        root = self.root

        def scan() -> tuple[list[dict[str, Any]], bool]:
            found: list[dict[str, Any]] = []
            if not root.is_dir():
                return found, False
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for filename in sorted(filenames):
                    if filename.endswith(".tmp") and filename.startswith("."):
                        continue
                    key = os.path.relpath(os.path.join(dirpath, filename), root).replace(os.sep, "/")
                    if key.startswith(prefix):
                        found.append({"key": key, "size": os.path.getsize(os.path.join(dirpath, filename))})
            found.sort(key=lambda item: item["key"])
            return found[:max_keys], len(found) > max_keys

        objects, truncated = await self._io(scan)
        return {"objects": objects, "count": len(objects), "truncated": truncated}

    async def delete(self, key: str, timeout: float) -> dict[str, Any]:
        path = self._path(key)
        try:
            await self._io(path.unlink)
            deleted = True
        except FileNotFoundError:
            deleted = False
        return {"key": key, "deleted": deleted}

    async def health(self, timeout: float) -> str:
        root = self.root
        if not root.exists():
            return f"{root} does not exist yet; it is created on the first put"
        if not root.is_dir():
            raise FailedPrecondition(f"{root} is not a directory")
        if not os.access(root, os.W_OK):
            raise FailedPrecondition(f"{root} is not writable")
        return f"{root} is a writable directory"


# --- S3-compatible --------------------------------------------------------------------------------


def validate_s3_config(v: Violations, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """endpoint, bucket, region; access_key_id and secret_access_key as credentials."""
    unknown_keys(v, config, [f.rstrip("*") for f in S3_FIELDS] + COMMON, "config")
    endpoint = text(v, config, "endpoint", "config.endpoint", required=True)
    if endpoint:
        url = URL(endpoint)
        v.check(url.scheme in ("http", "https") and bool(url.host) and url.path in ("", "/") and not url.user,
                "config.endpoint", "must be http(s)://host[:port] without a path or user")
    bucket = text(v, config, "bucket", "config.bucket", required=True, max_len=63)
    v.check(not bucket or (len(bucket) >= 3 and bucket.replace("-", "").replace(".", "").isalnum()
                           and bucket == bucket.lower()), "config.bucket",
            "3-63 lower-case letters, digits, '-' or '.'")
    text(v, config, "region", "config.region", max_len=64)
    flag(v, config, "path_style", "config.path_style", True)
    number(v, config, "max_object_bytes", "config.max_object_bytes", low=1, high=256 * 1024 * 1024, integer=True)
    for key in ("access_key_id", "secret_access_key"):
        v.check(bool(credentials.get(key)), f"credentials.{key}", "required")


def s3_targets(config: dict[str, Any]) -> list[Target]:
    """The endpoint's host (a virtual-hosted bucket's own name is checked on each request)."""
    endpoint = URL(config["endpoint"])
    return [Target("config.endpoint", endpoint.host or "", endpoint.port or 0)]


def s3_binding(config: dict[str, Any]) -> dict[str, Any]:
    """The keys are for the endpoint's origin and the bucket."""
    endpoint = URL(config.get("endpoint") or "")
    origin = f"{endpoint.scheme}://{endpoint.host}:{endpoint.port}" if endpoint.host else str(endpoint)
    return {"config.endpoint": origin, "config.bucket": config.get("bucket"),
            "config.path_style": config.get("path_style", True)}


class S3Client(_Storage):
    """An S3 bucket through its REST API: path-style or virtual-hosted URLs, SigV4 on every request."""

    def __init__(self, name: str, config: dict[str, Any], credentials: Mapping[str, str], shared: Shared) -> None:
        super().__init__(name, config, credentials, shared)
        self.endpoint = URL(config["endpoint"])
        self.bucket = config["bucket"]
        self.region = config.get("region") or "us-east-1"
        self.path_style = config.get("path_style", True)

    def _target(self, key: str) -> tuple[str, str]:
        """(host header, encoded path) of a key ("" for the bucket itself)."""
        host = self.endpoint.host or ""
        if not self.path_style:
            host = f"{self.bucket}.{host}"
        if self.endpoint.explicit_port:
            host = f"{host}:{self.endpoint.port}"
        path = "/" + sigv4.uri_encode(key, keep_slash=True) if key else "/"
        if self.path_style:
            path = f"/{self.bucket}" + (path if key else "")
        return host, path

    async def _send(self, method: str, key: str, timeout: float, *, query: list[tuple[str, str]] | None = None,
                    body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes, Mapping[str, str]]:
        host, path = self._target(key)
        query = query or []
        headers = dict(headers or {})
        signed = sigv4.sign(method, host, path, query, headers, hashlib.sha256(body).hexdigest(),
                            access_key=self.credential("access_key_id"),
                            secret_key=self.credential("secret_access_key"), region=self.region, service="s3",
                            session_token=self.credential("session_token"))
        url = f"{self.endpoint.scheme}://{host}{path}"
        if query:
            url += "?" + sigv4.canonical_query(query)
        # The bucket's own host when virtual-hosted: it is a name of its own, resolved and checked.
        await self.shared.targets.check(host.rsplit(":", 1)[0] if self.endpoint.explicit_port else host,
                                        self.endpoint.port or 0, "config.endpoint")
        session = self.shared.http
        import aiohttp  # loaded with the shared session (services.integration.clients.base.Shared)

        try:
            async with session.request(
                method, URL(url, encoded=True), data=body or None, headers={"Host": host, **headers, **signed},
                timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False,
                skip_auto_headers=("Content-Type",),
            ) as response:
                data = await response.content.read(self.max_bytes + 1)
                status, reply_headers = response.status, response.headers
        except TargetRefused as exc:  # the session's resolver: the name's answer changed since the check
            raise TargetRefused("config.endpoint", exc.description) from None
        except Exception as exc:
            raise external_error(exc, self.name, self.secrets) from None
        if status >= 500:
            raise Unavailable(f"{self.name} answered HTTP {status}{self._code(data)}")
        if status == 429:
            raise ResourceExhausted(f"{self.name} is throttling (HTTP 429); retry later")
        if status in (401, 403):
            raise FailedPrecondition(f"{self.name} refused the request (HTTP {status}{self._code(data)}); check the "
                                     "integration's credentials and the bucket's policy")
        return status, data, reply_headers

    @staticmethod
    def _code(data: bytes) -> str:
        try:
            # S3 answers from the endpoint the integration names. ElementTree resolves no external entity (no
            # XXE) and the bundled expat (>= 2.4.1) refuses entity-expansion bombs; the body is read capped.
            code = ET.fromstring(data).findtext("Code") if data else None  # noqa: S314 see the comment above
        except ET.ParseError:
            code = None
        return f", {code}" if code else ""

    def _missing(self, status: int, data: bytes, key: str) -> None:
        if status == 404:
            if "NoSuchBucket" in self._code(data):
                raise FailedPrecondition(f"{self.name}: bucket {self.bucket!r} does not exist")
            raise NotFound("object", key)

    async def put(self, key: str, data: bytes, content_type: str, timeout: float) -> dict[str, Any]:
        status, body, headers = await self._send(
            "PUT", key, timeout, body=data, headers={"Content-Type": content_type or "application/octet-stream"})
        self._missing(status, body, key)
        if status != 200:
            raise FailedPrecondition(f"{self.name}: PUT answered HTTP {status}{self._code(body)}")
        return {"key": key, "size": len(data), "etag": headers.get("ETag", "").strip('"')}

    async def get(self, key: str, timeout: float) -> dict[str, Any]:
        status, body, headers = await self._send("GET", key, timeout)
        self._missing(status, body, key)
        if len(body) > self.max_bytes:
            raise FailedPrecondition(f"the object is larger than config.max_object_bytes ({self.max_bytes})")
        return {"key": key, "size": len(body), "etag": headers.get("ETag", "").strip('"'),
                **_content(body, headers.get("Content-Type", "application/octet-stream"))}

    async def head(self, key: str, timeout: float) -> dict[str, Any]:
        status, body, headers = await self._send("HEAD", key, timeout)
        self._missing(status, body, key)
        return {"key": key, "size": int(headers.get("Content-Length") or 0), "etag": headers.get("ETag", "").strip('"'),
                "last_modified": headers.get("Last-Modified", ""), "content_type": headers.get("Content-Type", "")}

    async def list(self, prefix: str, max_keys: int, timeout: float) -> dict[str, Any]:
        query = [("list-type", "2"), ("max-keys", str(max_keys))] + ([("prefix", prefix)] if prefix else [])
        status, body, _ = await self._send("GET", "", timeout, query=query)
        self._missing(status, body, "")
        root = ET.fromstring(body)  # noqa: S314 no external entities, expat refuses expansion bombs (see _code)
        ns = S3_NS if root.tag.startswith(S3_NS) else ""
        objects = [{"key": item.findtext(f"{ns}Key"), "size": int(item.findtext(f"{ns}Size") or 0)}
                   for item in root.iter(f"{ns}Contents")]
        return {"objects": objects, "count": len(objects),
                "truncated": (root.findtext(f"{ns}IsTruncated") or "false") == "true"}

    async def delete(self, key: str, timeout: float) -> dict[str, Any]:
        status, body, _ = await self._send("DELETE", key, timeout)
        if status == 404 and "NoSuchBucket" in self._code(body):
            self._missing(status, body, key)
        return {"key": key, "deleted": status in (200, 204)}

    async def health(self, timeout: float) -> str:
        status, _, _ = await self._send("HEAD", "", timeout)
        if status == 404:
            raise FailedPrecondition(f"bucket {self.bucket!r} does not exist")
        return f"bucket {self.bucket!r} answers HTTP {status}"


LOCAL_SPEC = ClientSpec(
    client_type="local_storage",
    kind=integration_pb2.INTEGRATION_KIND_LOCAL_STORAGE,
    description="Object storage in a local directory: put, get, head, list, delete",
    operations=OPERATIONS,
    config_fields=LOCAL_FIELDS,
    credential_fields=(),
    validate_config=validate_local_config,
    validate_params=validate_params,
    factory=LocalStorageClient,
)

S3_SPEC = ClientSpec(
    client_type="s3",
    kind=integration_pb2.INTEGRATION_KIND_S3,
    description="S3-compatible object storage (AWS S3, MinIO, GCS interoperability...): SigV4-signed REST calls",
    operations=OPERATIONS,
    config_fields=S3_FIELDS,
    credential_fields=("access_key_id", "secret_access_key", "session_token"),
    validate_config=validate_s3_config,
    validate_params=validate_params,
    factory=S3Client,
    targets=s3_targets,
    binding=s3_binding,
)
