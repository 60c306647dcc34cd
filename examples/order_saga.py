"""Run the order saga (examples/order_saga.yaml) against a running mesh and show how it was undone.

    scripts/up --detach && .venv/bin/python examples/order_saga.py

It creates a local-storage integration (a temporary folder), registers (or updates) the definition, starts
one execution, waits for it, prints its tasks as a tree (as `protomesh workflows show` does) and checks
that the agent, the context and the stored receipt are gone again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

GATEWAY = "http://127.0.0.1:8080"
HERE = Path(__file__).parent


def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    token = subprocess.run([sys.executable, "-m", "chassis.tooling.cli", "token"], capture_output=True, text=True,
                           check=True).stdout.strip()
    request = urllib.request.Request(  # noqa: S310 the local gateway's http URL
        GATEWAY + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as reply:  # noqa: S310 the local gateway
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _expect(status: int, body: Any) -> None:
    if status != 200:
        raise SystemExit(f"the gateway answered {status}: {body}")


def main() -> int:
    root = tempfile.mkdtemp(prefix="order-saga-")
    status, created = call("POST", "/v1/integrations", {"name": f"receipts-{uuid.uuid4().hex[:6]}",
                                                        "kind": "INTEGRATION_KIND_LOCAL_STORAGE",
                                                        "config": {"root": root}})
    _expect(status, created)
    source = (HERE / "order_saga.yaml").read_text()
    status, reply = call("POST", "/v1/workflows/definitions", {"source": source})
    if status == 409:
        status, reply = call("PUT", "/v1/workflows/definitions/order-saga", {"source": source})
    _expect(status, reply)
    order = uuid.uuid4().hex[:8]
    status, started = call("POST", "/v1/workflows/executions", {"definition_name": "order-saga", "input": {
        "order_id": order, "amount": 42, "storage_integration_id": created["integration"]["integration_id"]}})
    _expect(status, started)
    execution_id = started["execution"]["execution_id"]
    for _ in range(300):
        execution = call("GET", f"/v1/workflows/executions/{execution_id}")[1]["execution"]
        if execution["status"] not in ("EXECUTION_STATUS_PENDING", "EXECUTION_STATUS_RUNNING",
                                       "EXECUTION_STATUS_COMPENSATING"):
            break
        time.sleep(0.1)
    print(f"execution {execution_id}: {execution['status']} ({execution.get('error', {}).get('title', '')})")
    for task in call("GET", f"/v1/workflows/executions/{execution_id}/history")[1]["tasks"]:
        mark = " (compensation)" if task.get("compensation") else ""
        print(f"  {task['path']:<48} {task['status'].removeprefix('TASK_STATUS_')}{mark}")
    agents = call("GET", f"/v1/agents?name_contains=order-{order}")[1].get("agents", [])
    receipt = Path(root, "receipts", f"{order}.json")
    print(f"agent left: {bool(agents)}; receipt left: {receipt.exists()}")
    return 0 if execution.get("compensated") and not agents and not receipt.exists() else 1


if __name__ == "__main__":
    raise SystemExit(main())
