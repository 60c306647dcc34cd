"""protomesh services: one package per service, each a handful of files on top of chassis."""

from chassis.nats_transport import load_nats_without_websocket

# Before any service module imports nats-py: its websocket transport (and the ~11 MB of aiohttp it
# pulls in) is not loaded in a replica that talks to NATS over TCP.
load_nats_without_websocket()
