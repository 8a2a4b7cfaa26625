"""What the serving benchmarks share (serve.py, soak.py): the telco_churn champion trained and
registered in a temporary MLflow registry, ``mlwright serve`` started as a real process on
loopback, and the raw HTTP/1.1 pieces of their load generators (no client library in the
measured path)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {process.args}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def request_head(path: str, length: int, headers: str = "") -> bytes:
    """The head of a ``POST path`` with a JSON body of ``length`` bytes; ``headers`` are
    extra ``Name: value\\r\\n`` lines."""
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"{headers}Content-Length: {length}\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """One HTTP/1.1 response: status, headers (lower-case names) and body (Content-Length
    or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name:
            headers[name.lower()] = value.strip()
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunks.append((await reader.readexactly(size + 2))[:size])
            if size == 0:
                break
        return status, headers, b"".join(chunks)
    return status, headers, await reader.readexactly(int(headers.get(b"content-length", 0)))


@dataclass
class Champion:
    """The served model: its registry, the loaded model and held-out JSON records."""

    tracking_uri: str
    loaded: Any
    train_rows: int
    records: list[dict[str, Any]]


def train_champion(work: Path, budget: float, seed: int = 0, run: Path | None = None
                   ) -> Champion:
    """Train on 5,000 rows of telco_churn (or take the saved ``run`` folder: the same
    champion in every benchmark run, as a budget-bound search differs with load), register it
    as ``churn@champion`` in a sqlite MLflow registry under ``work``; the other rows (without
    the target) are the request records."""
    import mlwright as mw
    from mlwright.datasets import load_suite
    from mlwright.registry import Registry, load_model

    uri = f"sqlite:///{work / 'mlflow.db'}"
    df = load_suite("telco_churn")
    train, test = df.iloc[:5000], df.iloc[5000:].drop(columns="churn")
    if run is None:
        print(f"training on {len(train)} rows ({budget:g} s)…", flush=True)
        result = mw.train(train, "churn", time_budget=budget, seed=seed)
        result.save(work / "run")
    else:
        from mlwright.run import load_run

        result = load_run(run)
        shutil.copytree(run, work / "run")
    Registry(uri).register(result, work / "run", name="churn", sample=train.head(5))
    loaded = load_model("churn@champion", tracking_uri=uri)
    records = test.astype(object).where(test.notna(), None).to_dict("records")
    return Champion(uri, loaded, len(train), records)


def train_in_subprocess(work: Path, budget: float, run: Path | None = None
                        ) -> dict[str, Any]:
    """:func:`train_champion` in a process of its own, once per ``work`` folder: a load
    generator stays lean (no training threads, no model heap for its garbage collector).
    Returns work/champion.json: tracking_uri, train_rows, members, body_limit, records."""
    out = work / "champion.json"
    if not out.exists():
        subprocess.run([sys.executable, __file__, "train", str(work), str(budget),
                        *([str(run)] if run else [])], check=True)
    return dict(json.loads(out.read_text()))


def _train_main(work: Path, budget: float, run: Path | None) -> None:
    from mlwright.config import ServeConfig

    champion = train_champion(work, budget, run=run)
    (work / "champion.json").write_text(json.dumps({
        "tracking_uri": champion.tracking_uri, "train_rows": champion.train_rows,
        "members": champion.loaded.model.describe(),
        "body_limit": int(ServeConfig.model_validate({}).max_body_mb * 1024 * 1024),
        "records": champion.records}, default=str))


def server_env(tracking_uri: str) -> dict[str, str]:
    # mlflow runs `uvicorn` from PATH: the venv's bin must come first.
    return {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def start_mlwright(work: Path, tracking_uri: str, port: int, database: Path, log: IO[bytes],
                   *, args: tuple[str, ...] = (), cpus: set[int] | None = None
                   ) -> subprocess.Popen[bytes]:
    """``mlwright serve churn@champion`` in its own process (its pid is the server's: one
    worker), output to ``log`` (an unread pipe fills up and blocks the server). ``cpus``:
    the CPUs its threads may run on (set before anything starts, so every thread inherits)."""
    code = "from mlwright.cli import main; main()"
    if cpus:
        code = f"import os; os.sched_setaffinity(0, {sorted(cpus)!r}); {code}"
    return subprocess.Popen(
        [sys.executable, "-c", code, "serve", "churn@champion", "--port", str(port),
         "--database", f"sqlite:///{database}", *args],
        env=server_env(tracking_uri), cwd=work, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> float | None:
    """SIGTERM, then wait up to ``timeout`` s; killed past it. Seconds it took to exit
    (None: it had to be killed)."""
    started = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
    return time.monotonic() - started


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MiB (VmRSS of /proc/PID/status); None once gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None



def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (/proc/PID/stat), None once gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the processes started below ``pid`` (the server's body
    worker and its forkserver), those still running (/proc/PID/task/TID/children)."""
    total, todo = 0.0, [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:  # gone meanwhile
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as listed:
                    found = [int(c) for c in listed.read().split()]
            except OSError:
                continue
            for child in found:
                total += cpu_seconds(child) or 0.0
                todo.append(child)
    return total


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"]:
        _train_main(Path(sys.argv[2]), float(sys.argv[3]),
                    Path(sys.argv[4]) if len(sys.argv) > 4 else None)
