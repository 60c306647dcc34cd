"""A gRPC health probe for containers: `python -m chassis.healthcheck --addr 127.0.0.1:50051`.

In a container whose replica serves mTLS (MESH_TLS_CERT/KEY/CA set, chassis.tls) the probe presents
the replica's own certificate, as another replica would; with MESH_TLS=off it dials plaintext.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when the service reports SERVING, 1 otherwise (with the reason on stderr)."""
    parser = argparse.ArgumentParser(description="Ask a gRPC server's health service whether it is SERVING.")
    parser.add_argument("--addr", default="127.0.0.1:50051", help="host:port of the gRPC server")
    parser.add_argument("--service", default="", help="gRPC service name; empty means the whole server")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    with _channel(args.addr) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            print(f"unhealthy: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


def _channel(address: str) -> grpc.Channel:
    files = [os.environ.get(name, "") for name in ("MESH_TLS_CA", "MESH_TLS_KEY", "MESH_TLS_CERT")]
    if not all(files):
        return grpc.insecure_channel(address)
    ca, key, cert = (Path(path).read_bytes() for path in files)
    certificate = x509.load_pem_x509_certificate(cert)
    # The replica's own certificate names its service: the server it checks is itself.
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = names.get_values_for_type(x509.DNSName)
    options = [("grpc.ssl_target_name_override", dns[0])] if dns else []
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(ca, key, cert), options=options)


if __name__ == "__main__":
    raise SystemExit(main())
