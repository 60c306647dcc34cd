"""AWS Signature Version 4 for HTTP requests (S3 and any other SigV4 service), with the standard library.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
The caller passes the path already URI-encoded (S3 does not normalise paths, so it is signed as
sent); query parameters are encoded and sorted here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """AWS's URI encoding: everything but A-Z a-z 0-9 - _ . ~ (and '/' in object keys) is %XX."""
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key for one day, region and service."""
    key = _hmac(("AWS4" + secret_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Encoded name=value pairs sorted by name, then value."""
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(method: str, encoded_path: str, query: Iterable[tuple[str, str]],
                      headers: Mapping[str, str], payload_hash: str) -> tuple[str, str]:
    """(canonical request, signed header names) of a request."""
    canonical_headers = {k.lower().strip(): " ".join(str(v).split()) for k, v in headers.items()}
    names = sorted(canonical_headers)
    request = "\n".join([
        method.upper(),
        encoded_path or "/",
        canonical_query(query),
        "".join(f"{name}:{canonical_headers[name]}\n" for name in names),
        ";".join(names),
        payload_hash,
    ])
    return request, ";".join(names)


def sign(method: str, host: str, encoded_path: str, query: Iterable[tuple[str, str]], headers: Mapping[str, str],
         payload_hash: str, *, access_key: str, secret_key: str, region: str, service: str,
         now: datetime | None = None, session_token: str = "", content_sha256_header: bool = True) -> dict[str, str]:
    """Headers to send with the request: x-amz-date, x-amz-content-sha256 (S3), the token, Authorization.

    `headers` are the other headers to sign (host is added); they must be sent unchanged.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    added = {"x-amz-date": amz_date}
    if content_sha256_header:
        added["x-amz-content-sha256"] = payload_hash
    if session_token:
        added["x-amz-security-token"] = session_token
    to_sign = {"host": host, **{k.lower(): v for k, v in headers.items()}, **added}
    request, signed_headers = canonical_request(method, encoded_path, list(query), to_sign, payload_hash)
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_key, date, region, service), string_to_sign.encode(),
                         hashlib.sha256).hexdigest()
    added["Authorization"] = (f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_headers}, "
                              f"Signature={signature}")
    return added
