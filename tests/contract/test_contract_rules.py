"""House rules of the contracts that buf lint does not cover, checked on the descriptor set gen/protomesh.binpb.

Every package is `protomesh.<name>.vN` in the matching folder; services live one per `*_service.proto`,
named after the file; every RPC has a `google.api.http` rule (Envoy transcodes REST from it) and its own
`<Rpc>Request`/`<Rpc>Response` messages in its package.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from chassis.paths import DESCRIPTOR_SET

PACKAGE = re.compile(r"protomesh\.[a-z][a-z0-9]*(_[a-z0-9]+)*\.v[1-9][0-9]*")
THIRD_PARTY_PREFIX = ("google/", "buf/")
"""Files of the descriptor set that are imports (well-known types, googleapis, protovalidate), not our contracts."""


def load_descriptor_set(path: Path = DESCRIPTOR_SET) -> descriptor_pb2.FileDescriptorSet:
    """The descriptor set, with google.api.http options readable (annotations_pb2 is imported above)."""
    return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())


def _pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def contract_violations(descriptor_set: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """Every breach of the house rules in our contract files, one readable line each."""
    problems: list[str] = []
    used_by: dict[str, list[str]] = defaultdict(list)
    for file in descriptor_set.file:
        if file.name.startswith(THIRD_PARTY_PREFIX):
            continue
        if not PACKAGE.fullmatch(file.package):
            problems.append(f"{file.name}: package {file.package!r} is not protomesh.<name>.v<N>")
        folder = str(PurePosixPath(file.name).parent)
        if folder != file.package.replace(".", "/"):
            problems.append(f"{file.name}: package {file.package} belongs in folder {file.package.replace('.', '/')}/")
        stem = PurePosixPath(file.name).stem
        if stem.endswith("_service"):
            if len(file.service) != 1:
                problems.append(f"{file.name}: a *_service.proto holds exactly one service, found {len(file.service)}")
            elif file.service[0].name != _pascal(stem):
                problems.append(f"{file.name}: its service should be named {_pascal(stem)}, not {file.service[0].name}")
        elif file.service:
            problems.append(f"{file.name}: services belong in a *_service.proto file")

        for service in file.service:
            for method in service.method:
                rpc = f"{file.package}.{service.name}.{method.name}"
                rule = method.options.Extensions[annotations_pb2.http]
                if not method.options.HasExtension(annotations_pb2.http) or rule.WhichOneof("pattern") is None:
                    problems.append(f"{rpc}: no google.api.http annotation (REST through Envoy needs one)")
                for kind, type_name in (("Request", method.input_type), ("Response", method.output_type)):
                    expected = f".{file.package}.{method.name}{kind}"
                    if type_name != expected:
                        problems.append(
                            f"{rpc}: {kind.lower()} type is {type_name.lstrip('.')}, expected {expected[1:]}"
                        )
                    used_by[type_name].append(rpc)
    for type_name, rpcs in sorted(used_by.items()):
        if len(rpcs) > 1:
            problems.append(f"{type_name.lstrip('.')} is shared by {', '.join(rpcs)}; each RPC needs its own")
    return problems


def test_contracts_follow_the_house_rules() -> None:
    """The real contracts (as generated into gen/) break none of the rules, and there is something to check."""
    descriptor_set = load_descriptor_set()
    services = [s for f in descriptor_set.file if not f.name.startswith(THIRD_PARTY_PREFIX) for s in f.service]
    assert services, f"{DESCRIPTOR_SET} holds no service: is it generated? (scripts/gen_protos)"
    problems = contract_violations(descriptor_set)
    assert not problems, "proto/ breaks the contract rules:\n" + "\n".join(problems)


def _good_contract() -> descriptor_pb2.FileDescriptorSet:
    """A small contract that follows every rule: protomesh.probe.v1.ProbeService with two RPCs."""
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    file = descriptor_set.file.add(name="protomesh/probe/v1/probe_service.proto", package="protomesh.probe.v1")
    service = file.service.add(name="ProbeService")
    for rpc, path in (("GetProbe", "/v1/probes/{id}"), ("ListProbes", "/v1/probes")):
        file.message_type.add(name=f"{rpc}Request")
        file.message_type.add(name=f"{rpc}Response")
        method = service.method.add(
            name=rpc, input_type=f".protomesh.probe.v1.{rpc}Request", output_type=f".protomesh.probe.v1.{rpc}Response"
        )
        method.options.Extensions[annotations_pb2.http].get = path
    descriptor_set.file.add(name="protomesh/probe/v1/probe.proto", package="protomesh.probe.v1")
    return descriptor_set


def _drop_http(ds: descriptor_pb2.FileDescriptorSet) -> None:
    ds.file[0].service[0].method[0].options.ClearExtension(annotations_pb2.http)


def _bad_package(ds: descriptor_pb2.FileDescriptorSet) -> None:
    ds.file[1].package = "probe"


def _wrong_folder(ds: descriptor_pb2.FileDescriptorSet) -> None:
    ds.file[1].name = "protomesh/other/v1/probe.proto"


def _second_service(ds: descriptor_pb2.FileDescriptorSet) -> None:
    ds.file[0].service.add(name="OtherService")


def _service_outside_service_file(ds: descriptor_pb2.FileDescriptorSet) -> None:
    ds.file[1].service.add(name="ProbeAdminService")


def _misnamed_service(ds: descriptor_pb2.FileDescriptorSet) -> None:
    ds.file[0].service[0].name = "Probes"


def _shared_request(ds: descriptor_pb2.FileDescriptorSet) -> None:
    ds.file[0].service[0].method[1].input_type = ".protomesh.probe.v1.GetProbeRequest"


def _empty_response(ds: descriptor_pb2.FileDescriptorSet) -> None:
    ds.file[0].service[0].method[0].output_type = ".google.protobuf.Empty"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            _drop_http, "protomesh.probe.v1.ProbeService.GetProbe: no google.api.http annotation", id="drop_http"
        ),
        pytest.param(_bad_package, "package 'probe' is not protomesh.<name>.v<N>", id="bad_package"),
        pytest.param(
            _wrong_folder, "package protomesh.probe.v1 belongs in folder protomesh/probe/v1/", id="wrong_folder"
        ),
        pytest.param(_second_service, "a *_service.proto holds exactly one service, found 2", id="second_service"),
        pytest.param(
            _service_outside_service_file,
            "protomesh/probe/v1/probe.proto: services belong in a *_service.proto",
            id="service_outside_service_file",
        ),
        pytest.param(_misnamed_service, "its service should be named ProbeService, not Probes", id="misnamed_service"),
        pytest.param(
            _shared_request,
            "ListProbes: request type is protomesh.probe.v1.GetProbeRequest, expected",
            id="shared_request",
        ),
        pytest.param(_shared_request, "protomesh.probe.v1.GetProbeRequest is shared by", id="shared_request"),
        pytest.param(
            _empty_response, "GetProbe: response type is google.protobuf.Empty, expected", id="empty_response"
        ),
    ],
)
def test_each_rule_can_fail(mutate: Callable[[descriptor_pb2.FileDescriptorSet], None], expected: str) -> None:
    """A good contract passes; breaking one rule yields exactly that rule's complaint."""
    descriptor_set = _good_contract()
    assert contract_violations(descriptor_set) == []
    mutate(descriptor_set)
    problems = contract_violations(descriptor_set)
    assert any(expected in problem for problem in problems), problems
