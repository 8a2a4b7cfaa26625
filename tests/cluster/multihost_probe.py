"""What the multi-host test asks from inside the client's network namespace (it cannot
reach the other hosts from the test process itself), printed as one line of JSON.

    python multihost_probe.py workers SCHEDULER N   wait for N workers, start recording the
                                                    scheduler's task stream, list them
    python multihost_probe.py tasks SCHEDULER       the recorded tasks: key, worker
    python multihost_probe.py registry STORE NAME   the registered versions and the audit
"""

from __future__ import annotations

import json
import sys
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


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "workers":
        answer = workers(args[0], int(args[1]))
    elif command == "tasks":
        answer = tasks(args[0])
    else:
        answer = registry(args[0], args[1])
    print(json.dumps(answer))
