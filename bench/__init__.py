"""protomesh benchmarks: `python -m bench --help` (or scripts/bench). Not tests; see bench/__main__.py."""
