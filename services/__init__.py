"""protomesh services: one package per service, each a handful of files on top of chassis."""
