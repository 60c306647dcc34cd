"""Where the project's folders are, found from this file so it works from any working directory."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = REPO_ROOT / "proto"
THIRD_PARTY_PROTO_DIR = REPO_ROOT / "third_party" / "proto"
GEN_DIR = REPO_ROOT / "gen"
DESCRIPTOR_SET = GEN_DIR / "protomesh.binpb"
ENVOY_DIR = REPO_ROOT / "envoy"
RUN_DIR = REPO_ROOT / ".protomesh"
