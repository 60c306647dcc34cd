"""Regenerates gen/ from proto/: Python stubs (grpcio-tools) and Envoy's descriptor set."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

from chassis.paths import GEN_DIR, PROTO_DIR, THIRD_PARTY_PROTO_DIR

DESCRIPTOR_SET_NAME = "protomesh.binpb"
# Error-detail types are not imported by our contracts but must be in the descriptor set so
# Envoy's transcoder can render google.rpc.Status details as JSON.
EXTRA_DESCRIPTOR_PROTOS = ("google/rpc/status.proto", "google/rpc/error_details.proto")


def contract_files(proto_dir: Path = PROTO_DIR) -> list[str]:
    """All .proto files of our contracts, relative to proto/, sorted for stable output."""
    return sorted(str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    well_known = str(resources.files("grpc_tools") / "_proto")
    argv = ["protoc", f"-I{PROTO_DIR}", f"-I{THIRD_PARTY_PROTO_DIR}", f"-I{well_known}", *args]
    if protoc.main(argv) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(argv)}")


def generate(out_dir: Path) -> None:
    """Write Python stubs and the descriptor set for every contract into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = contract_files()
    _protoc([f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *files])
    _protoc(
        [
            "--include_imports",
            f"--descriptor_set_out={out_dir / DESCRIPTOR_SET_NAME}",
            *files,
            *EXTRA_DESCRIPTOR_PROTOS,
        ]
    )
    for package_dir in [out_dir / "protomesh", *(p for p in (out_dir / "protomesh").rglob("*") if p.is_dir())]:
        if package_dir.name != "__pycache__":
            (package_dir / "__init__.py").touch()


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/gen_protos."""
    parser = argparse.ArgumentParser(description="Regenerate gen/ (Python stubs + Envoy descriptor set) from proto/.")
    parser.add_argument("--out", type=Path, default=GEN_DIR, help="output folder (default: gen/)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "gen"
        generate(staged)
        if args.out.exists():
            shutil.rmtree(args.out / "protomesh", ignore_errors=True)
            (args.out / DESCRIPTOR_SET_NAME).unlink(missing_ok=True)
        shutil.copytree(staged, args.out, dirs_exist_ok=True)
    print(f"generated {len(contract_files())} contracts into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
