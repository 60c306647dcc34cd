"""What an idle replica does not load: aiohttp (nats-py's websocket transport, an HTTP listener it
does not serve) and `cryptography` (its own certificate is read with the standard library)."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chassis.cert_validity import not_after
from chassis.nats_transport import wants_websocket
from chassis.tls import MeshTls, TlsFiles
from chassis.tooling.pki import LocalCA

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
import {module}, chassis.server
loaded = {{name: name in sys.modules for name in ("aiohttp", "cryptography", "nats.aio.transport")}}
import nats.aio.transport as transport
loaded["nats_websocket"] = transport.aiohttp is not None
import consul.aio  # the Consul registry's client still gets aiohttp afterwards
loaded["aiohttp_after_consul"] = "aiohttp" in sys.modules
print(json.dumps(loaded))
"""


def _loaded(module: str, nats_url: str) -> dict[str, bool]:
    env = {**os.environ, "NATS_URL": nats_url}
    out = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("service", ["agent", "workflow"])
def test_a_replica_loads_neither_aiohttp_nor_cryptography(service: str) -> None:
    loaded = _loaded(f"services.{service}.app", "nats://127.0.0.1:4222")
    assert loaded == {"aiohttp": False, "cryptography": False, "nats.aio.transport": True,
                      "nats_websocket": False, "aiohttp_after_consul": True}


def test_a_websocket_nats_url_keeps_nats_websocket_transport() -> None:
    loaded = _loaded("services.agent.app", "nats://a:4222, wss://b:443")
    assert loaded["aiohttp"] and loaded["nats_websocket"]
    assert wants_websocket("WS://x") and not wants_websocket("tls://x,nats://y")


def test_not_after_matches_cryptography_and_a_mismatched_key_is_refused(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "ca")
    issued = ca.issue("agent-1", "agent", lifetime_seconds=3600)
    ca.issue("other-1", "other", lifetime_seconds=3600)
    for pem in (issued.cert.read_bytes(), ca.pem):  # UTCTime (the workload) and the CA's
        assert not_after(pem) == x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()
    files = TlsFiles(cert=issued.cert, key=issued.key, ca=issued.ca)
    assert MeshTls(files).material.expires == not_after(issued.cert.read_bytes())
    wrong_key = TlsFiles(cert=issued.cert, key=tmp_path / "ca" / "other-1" / "key.pem", ca=issued.ca)
    with pytest.raises(ValueError, match="does not belong"):
        MeshTls(wrong_key)
    assert not_after(_self_signed(2051)) == datetime.datetime(2051, 6, 1, tzinfo=datetime.UTC).timestamp()
    with pytest.raises(ValueError):
        not_after(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")


def _self_signed(year: int) -> bytes:
    """A certificate valid until June `year` (from 2050 on, X.509 writes it as a GeneralizedTime)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
            .not_valid_after(datetime.datetime(year, 6, 1, tzinfo=datetime.UTC)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(("module", "absent"), [
    ("services.field.app", ("shapely", "pyproj", "numpy")),  # loaded by the first call that checks a geometry
    ("services.notification.app", ("aiohttp",)),  # loaded by the first webhook
    ("services.integration.app", ("aiohttp",)),  # loaded by the first HTTP or object-storage integration
])
def test_a_replica_loads_heavy_libraries_only_on_the_paths_that_use_them(module: str, absent: tuple[str, ...]) -> None:
    probe = f"import sys, {module}, chassis.server; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, check=True, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "NATS_URL": "nats://127.0.0.1:4222"})
    assert out.stdout.strip().splitlines()[-1] == "[]"
