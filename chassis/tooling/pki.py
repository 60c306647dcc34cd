"""The mesh's own PKI: a local CA and short-lived certificates naming each workload by SPIFFE id.

Every workload (a replica, the gateway) gets a key and a certificate whose URI SAN is
`spiffe://protomesh.local/<service>` and whose DNS SAN is `<service>` (what a chassis client checks
the server against, see chassis.tls). The CA signs nothing else, so "signed by this CA" and "in the
trust domain" are the same thing; a second CA's certificate is refused at the handshake.

Layout of a PKI folder (0700; keys 0600):

    ca.pem  ca.key               the CA (10 years; the key never leaves this folder)
    <name>/cert.pem key.pem ca.pem   one workload's credentials, renewed in place

A renewal writes key.pem, then cert.pem, each by an atomic rename; readers (chassis.tls, Envoy's
SDS) check that the pair matches and keep the previous one until it does.

`python -m chassis.tooling.pki issue --ca-dir CA --out OUT --service S [--watch]` is the certificate
step of compose and Kubernetes (docs/authorization.md): it issues workloads' files from the CA folder
(creating the CA there if missing) and, with --watch, renews them at 2/3 of their life.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chassis.tls import TRUST_DOMAIN, server_name
from chassis.tooling.credentials import PRIVATE_FILE_MODE, private_dir

GATEWAY = "gateway"
"""The workload name (and SPIFFE path) of Envoy."""
DEFAULT_LIFETIME_SECONDS = 24 * 3600.0
RENEW_AT = 2 / 3
"""A certificate is renewed once this share of its life has passed."""
CA_LIFETIME = datetime.timedelta(days=3650)
# Issued a little in the past: a peer whose clock is slightly behind still accepts the certificate.
BACKDATE = datetime.timedelta(seconds=60)


def spiffe_id(service: str) -> str:
    """The URI SAN naming a workload of the mesh."""
    return f"spiffe://{TRUST_DOMAIN}/{service}"


@dataclass(frozen=True)
class Issued:
    """Where one workload's credentials are, and when they should be renewed."""

    directory: Path
    renew_after: float
    """Unix time past which the certificate should be replaced."""

    @property
    def cert(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "key.pem"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE, owner: int | None = None) -> None:
    # Atomic: a reader sees the old file or the new one, never a half-written one, never a wider mode,
    # never one its workload cannot read (the owner is set before the rename).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    if owner is not None:
        os.chown(tmp, owner, -1)
    tmp.replace(path)


class LocalCA:
    """A CA kept in a folder; created on first use, reused afterwards (its certificate is the trust root)."""

    def __init__(self, directory: Path, *, create: bool = True) -> None:
        self.directory = directory
        self.cert_path = directory / "ca.pem"
        self.key_path = directory / "ca.key"
        if not (self.cert_path.is_file() and self.key_path.is_file()):
            if not create:  # e.g. a Kubernetes Secret's read-only mount: the operator makes the CA once
                raise FileNotFoundError(f"no CA in {directory} (ca.pem and ca.key): create it with `python -m "
                                        "chassis.tooling.pki ca --dir DIR` and give it to this step")
            private_dir(directory)
            self._create()
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.key_path} is not the EC key this CA makes")
        self._key = key
        self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        self.pem = self.cert_path.read_bytes()

    def _create(self, name: str = f"protomesh local CA ({TRUST_DOMAIN})") -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - BACKDATE)
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(self.key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
        _write(self.cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def issue(self, name: str, service: str, lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS,
              directory: Path | None = None, owner: int | None = None) -> Issued:
        """Issue (or renew) the credentials of workload `name` of `service` into `<ca dir>/<name>/`
        (or `directory`), owned by `owner` (a uid; default: whoever runs this)."""
        target = private_dir(directory or self.directory / name)
        if owner is not None:
            os.chown(target, owner, -1)
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        life = datetime.timedelta(seconds=lifetime_seconds)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service),
                                     x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, name)]))
            .issuer_name(self._cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + life)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # A replica's certificate is its server certificate and its client certificate alike.
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([
                x509.UniformResourceIdentifier(spiffe_id(service)),
                # What chassis clients verify the server against (grpc.ssl_target_name_override).
                x509.DNSName(server_name(service)),
            ]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        _write(target / "ca.pem", self.pem, 0o644, owner)
        # Key first, then certificate: a reader that sees a new key with the old certificate finds the
        # pair does not match and keeps what it had until the certificate lands too.
        _write(target / "key.pem", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()), owner=owner)
        _write(target / "cert.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644, owner)
        return Issued(target, (now + life * RENEW_AT).timestamp())


def main(argv: list[str] | None = None) -> int:
    """The init step (and renewer) of compose/Kubernetes: issue workloads' credentials from a CA folder."""
    parser = argparse.ArgumentParser(prog="python -m chassis.tooling.pki")
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue", help="issue workloads' keys and certificates (creating the CA if missing)")
    issue.add_argument("--ca-dir", type=Path, required=True, help="the CA folder (ca.pem, ca.key)")
    issue.add_argument("--out", type=Path, required=True,
                       help="where the credentials go: <out>/<service>/")
    issue.add_argument("--service", action="append", required=True, help="workload name; repeat for several")
    issue.add_argument("--lifetime-hours", type=float, default=DEFAULT_LIFETIME_SECONDS / 3600)
    issue.add_argument("--watch", action="store_true",
                       help="keep running and renew each certificate at 2/3 of its life (a sidecar / service)")
    issue.add_argument("--existing-ca", action="store_true",
                       help="the CA must already be in --ca-dir (a read-only Secret): never create one")
    issue.add_argument("--chown", action="append", default=[], metavar="SERVICE=UID",
                       help="make a workload's files owned by UID (e.g. Envoy's image runs as 101); '*' for the rest")
    make_ca = sub.add_parser("ca", help="create the mesh's CA in a folder (once; e.g. for a Kubernetes Secret)")
    make_ca.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "ca":
        made = LocalCA(args.dir)
        print(f"CA of {TRUST_DOMAIN} in {made.directory} (ca.pem, ca.key: keep ca.key private)")
        return 0
    owners = dict(item.split("=", 1) for item in args.chown)
    ca = LocalCA(args.ca_dir, create=not args.existing_ca)
    while True:
        renew_after = []
        for service in args.service:
            target = args.out / service
            owner = owners.get(service, owners.get("*"))
            issued = ca.issue(service, service, args.lifetime_hours * 3600, directory=target,
                              owner=int(owner) if owner is not None else None)
            renew_after.append(issued.renew_after)
            print(f"issued {spiffe_id(service)} into {issued.directory}", flush=True)
        if not args.watch:
            return 0
        time.sleep(max(1.0, min(renew_after) - time.time()))


if __name__ == "__main__":
    raise SystemExit(main())
