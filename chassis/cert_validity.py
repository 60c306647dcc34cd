"""A certificate's notAfter, read from its DER encoding with the standard library.

chassis.tls needs only this one field of its own certificate (for the "reloaded" log line), and
loading `cryptography` for it costs every replica ~8 MB RSS. The walk follows RFC 5280:
Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }.
"""

from __future__ import annotations

import datetime as dt
import ssl

_SEQUENCE = 0x30
_VERSION = 0xA0
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18


def _element(der: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at offset."""
    if offset + 2 > len(der):
        raise ValueError("truncated DER element")
    tag, length = der[offset], der[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(der):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[start:start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise ValueError("truncated DER element")
    return tag, start, end


def _time(tag: int, value: bytes) -> float:
    text = value.decode("ascii")
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ; RFC 5280: years 50-99 are 19xx
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise ValueError(f"not an X.509 time (tag {tag:#x})")
    moment = dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.UTC)
    return moment.timestamp()


def not_after(pem: bytes) -> float:
    """The notAfter of the first certificate in `pem`, as a POSIX timestamp; ValueError if it cannot be read."""
    der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    tag, start, _ = _element(der, 0)
    if tag != _SEQUENCE:
        raise ValueError("not a certificate")
    tag, cursor, tbs_end = _element(der, start)
    if tag != _SEQUENCE:
        raise ValueError("not a certificate")
    tag, _, end = _element(der, cursor)
    if tag == _VERSION:
        cursor = end
    for _ in range(3):  # serialNumber, signature, issuer
        _, _, cursor = _element(der, cursor)
    tag, validity, _ = _element(der, cursor)
    if tag != _SEQUENCE or cursor >= tbs_end:
        raise ValueError("certificate without validity")
    _, _, after = _element(der, validity)  # notBefore
    tag, start, end = _element(der, after)
    return _time(tag, der[start:end])
