"""Fixtures for end-to-end tests: one real mesh per module (PostgreSQL, NATS, 2 agent replicas, Envoy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chassis.tooling.mesh_testing import RestClient, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_service_pb2_grpc


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """A whole mesh on free ports, stopped after the module."""
    with running_mesh(only=["agent"]) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    """JSON over HTTP through Envoy."""
    return RestClient.for_mesh(mesh)


@pytest.fixture(scope="module")
def agents(mesh: Mesh) -> Iterator[agent_service_pb2_grpc.AgentServiceStub]:
    """A gRPC stub for AgentService through Envoy."""
    with mesh_channel(mesh) as channel:
        yield agent_service_pb2_grpc.AgentServiceStub(channel)
