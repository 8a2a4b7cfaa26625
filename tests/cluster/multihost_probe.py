"""What the multi-host test asks from inside the client's network namespace (it cannot
reach the other hosts from the test process itself), printed as one line of JSON.

    python multihost_probe.py workers SCHEDULER N   wait for N workers, start recording the
                                                    scheduler's task stream, list them
    python multihost_probe.py tasks SCHEDULER       the recorded tasks: key, worker
    python multihost_probe.py registry STORE NAME   the registered versions and the audit
    python multihost_probe.py predict URL KEY ROWS  once /readyz answers: each record of the
                                                    JSON file ROWS posted to /v1/predict
                                                    with the key (and the first without)
    python multihost_probe.py logged STORE          the prediction log's records
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def workers(address: str, n: int) -> Any:
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=120)
        client.get_task_stream()  # the scheduler records every task from now on
        info = client.scheduler_info(n_workers=-1)
        return {"scheduler": info["address"], "workers": sorted(info["workers"])}


def tasks(address: str) -> Any:
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        return [{"key": str(t["key"]), "worker": t["worker"]}
                for t in client.get_task_stream()]


def registry(store: str, name: str) -> Any:
    from mlwright.config import StoreConfig
    from mlwright.registry import Registry

    reg = Registry(StoreConfig(url=store).resolved_tracking_uri())
    return {"database": reg.database_url,
            "versions": [{"version": v.version, "aliases": v.aliases}
                         for v in reg.list(name)],
            "audit": [{"action": e["action"], "version": e["version"]}
                      for e in reg.audit.entries(name)]}


def predict(url: str, key: str, rows_file: str) -> Any:
    import time

    import httpx

    rows = json.loads(Path(rows_file).read_text())
    deadline = time.monotonic() + 120
    with httpx.Client(timeout=30) as http:
        while True:
            try:
                if http.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}/readyz did not answer 200 within 120 s")
            time.sleep(0.2)
        without_key = http.post(f"{url}/v1/predict", json=rows[0]).status_code
        answers = [http.post(f"{url}/v1/predict", json=row,
                             headers={"x-api-key": key, "x-request-id": f"r{i}"})
                   for i, row in enumerate(rows)]
    return {"without_key": without_key,
            "answers": [{"status": a.status_code, "version": a.json().get("version")}
                        for a in answers]}


def logged(store: str) -> Any:
    from sqlalchemy import text

    from mlwright.store.engine import get_engine, normalize_url

    with get_engine(normalize_url(store)).connect() as conn:
        return [list(r) for r in conn.execute(text(
            "SELECT request_id, model, version, status FROM predictions ORDER BY id"))]


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "workers":
        answer = workers(args[0], int(args[1]))
    elif command == "tasks":
        answer = tasks(args[0])
    elif command == "predict":
        answer = predict(args[0], args[1], args[2])
    elif command == "logged":
        answer = logged(args[0])
    else:
        answer = registry(args[0], args[1])
    print(json.dumps(answer))
