"""The mesh across several hosts on one machine: network namespaces, a NATS cluster, replicas spread over them.

`netns` makes the hosts and their faults (partition, latency); `processes` runs the mesh's programs inside
a host; `mesh.HostedMesh` is the supervisor's Mesh placed over the hosts (docs/chaos.md).
"""
