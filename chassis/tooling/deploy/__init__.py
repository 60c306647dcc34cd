"""`protomesh gen`: the deploy files derived from the contracts and each service's deploy.toml.

The catalog (gen/protomesh.binpb) says which services exist; `services/<name>/deploy.toml` says the
little that differs per service (replicas, extra environment, secrets). From those two this package
writes compose's service blocks, the Kubernetes manifests of every service, Envoy's compose config
and the Prometheus target list and alert regex, so adding a service edits none of them by hand.
"""

from chassis.tooling.deploy.generate import GenError, render, run_gen, stale_files, write_files

__all__ = ["GenError", "render", "run_gen", "stale_files", "write_files"]
