"""SigV4 signing against AWS's published examples."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from services.integration import sigv4

# pragma: allowlist nextline secret - AWS's published example key (SigV4 test vector)
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def test_get_vanilla_from_the_aws_sigv4_test_suite() -> None:
    # aws-sig-v4-test-suite/get-vanilla: GET / with only Host and X-Amz-Date signed.
    headers = sigv4.sign("GET", "example.amazonaws.com", "/", [], {}, sigv4.EMPTY_SHA256,
                         access_key="AKIDEXAMPLE", secret_key=SECRET, region="us-east-1", service="service",
                         now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC), content_sha256_header=False)
    assert headers["x-amz-date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


def test_get_vanilla_query_order_from_the_aws_sigv4_test_suite() -> None:
    # aws-sig-v4-test-suite/get-vanilla-query-order-key-case: parameters are signed sorted.
    headers = sigv4.sign("GET", "example.amazonaws.com", "/", [("Param2", "value2"), ("Param1", "value1")], {},
                         sigv4.EMPTY_SHA256, access_key="AKIDEXAMPLE", secret_key=SECRET, region="us-east-1",
                         service="service", now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
                         content_sha256_header=False)
    assert headers["Authorization"].endswith(
        "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")


def test_s3_get_object_example_from_the_s3_documentation() -> None:
    # S3 API reference, "Signature Calculations for the Authorization Header", GET Object example.
    headers = sigv4.sign("GET", "examplebucket.s3.amazonaws.com", "/test.txt", [], {"Range": "bytes=0-9"},
                         # pragma: allowlist nextline secret - AWS's published example key id (SigV4 test vector)
                         sigv4.EMPTY_SHA256, access_key="AKIAIOSFODNN7EXAMPLE",
                         # pragma: allowlist nextline secret - AWS's published example key (SigV4 test vector)
                         secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="us-east-1", service="s3",
                         now=datetime(2013, 5, 24, tzinfo=UTC))
    assert headers["x-amz-content-sha256"] == hashlib.sha256(b"").hexdigest()
    assert headers["Authorization"] == (
        # pragma: allowlist nextline secret - AWS's published example key id (SigV4 test vector)
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_object_keys_keep_their_slashes_and_encode_the_rest() -> None:
    assert sigv4.uri_encode("a b/c+d~e.txt", keep_slash=True) == "a%20b/c%2Bd~e.txt"
    assert sigv4.canonical_query([("prefix", "a b"), ("list-type", "2")]) == "list-type=2&prefix=a%20b"
