"""The operator's half of the chassis: the local mesh supervisor, the `protomesh` CLI, Envoy's config
generator and EDS bridge, the infrastructure processes, the trace store and code generation.

A replica never loads any of it: the runtime (`chassis` outside this package) imports nothing from
here, and tests/contract/test_chassis_layers.py says so.
"""
