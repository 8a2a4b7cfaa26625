"""Dashboard benchmark: pages and panels over 1,000,000 logged predictions and a year of
windows.

Builds once (cached under /tmp/mlwright-bench-ui) a project: a model trained on telco_churn
and registered as champion, and a prediction log of N records spread over the last 365 days
(inputs resampled from telco_churn and scored by the model, as the server logs them; the
second half drifted; 1% of records refused with a contract violation; a shadow version for
the last month; 10% of records labelled), bulk-inserted through the store's own table
definitions. Then serves ``mlwright ui`` (its app, in a process of its own) and:

* fills the windows of the ranges measured once (the monitor over each window; the cold
  cost is reported, not part of the targets: later views read the stored windows);
* times each page and each panel from a client on loopback, ``--repeat`` times each after
  one warm-up request: p50 and p95 of the server's answer time;
* loads the model page in Debian's headless Chromium (Playwright, executable_path) until
  every panel has drawn its charts: full render time, and the bytes the page fetched
  without Plotly's JS (which the browser caches for a day).

Targets (issue 19): p95 <= 200 ms a page, <= 100 ms a panel, render <= 2 s, payload <= 300 KB.

    .venv/bin/python benchmarks/ui.py                    # 1,000,000 records
    .venv/bin/python benchmarks/ui.py --rows 100000      # smaller

Prints a markdown table; writes ``benchmarks/results/ui.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

RESULTS = Path(__file__).resolve().parent / "results" / "ui.json"
CACHE = Path("/tmp/mlwright-bench-ui")
NAME = "churn"
DAY = 86400.0
PAGES = {"models page": "/ui/models", "model page": f"/ui/m/{NAME}?range=365d"}
PANELS = ("models", "traffic", "drift", "performance", "decisions", "audit")
RANGES = ("365d", "30d")


def _project(rows: int) -> tuple[str, str]:
    """(database URL, tracking URI) of the cached project, built when missing."""
    root = CACHE / f"project-{rows}"
    database, tracking = (f"sqlite:///{root / 'mlwright.db'}",
                          f"sqlite:///{root / 'mlflow.db'}")
    if (root / "done").exists():
        return database, tracking
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    import mlwright as mw
    from mlwright.datasets import load_suite
    from mlwright.evaluate.report import evaluate
    from mlwright.registry.core import Registry

    df = load_suite("telco_churn")
    train = df.sample(frac=0.5, random_state=0)
    result = mw.train(train, "churn", time_budget=20, families=["lightgbm", "linear"], seed=0)
    folder = result.save(root / "run")
    evaluate(result, explain=False, bootstrap=200).write(folder)
    registry = Registry(tracking, database_url=database)
    registry.register(result, folder, name=NAME, alias="champion")
    registry.register(result, folder, name=NAME, alias="challenger")  # the shadow version
    started = time.perf_counter()
    _build_log(database, result, df, rows)
    print(f"log of {rows:,} records written in {time.perf_counter() - started:.1f} s")
    (root / "done").write_text("ok")
    return database, tracking


def _json_records(frame: Any) -> list[str]:
    return [orjson.dumps({k: (None if isinstance(v, float) and v != v else
                              v.item() if hasattr(v, "item") else v)
                          for k, v in r.items()}).decode()
            for r in frame.astype(object).to_dict("records")]


def _build_log(database: str, result: Any, df: Any, rows: int) -> None:
    """``rows`` records over the last year through ``predictions.insert()`` (and labels
    through ``feedback.insert()``), in chunks of one transaction each."""
    from mlwright.store import feedback, open_database, predictions

    features = result.contract.feature_names
    X = df[features]
    drifted = X.copy()
    drifted["monthly_charges"] = drifted["monthly_charges"] * 1.3
    variants = []
    for frame in (X, drifted):
        proba = result.model.predict_proba(frame)
        labels = result.model.classes_[proba.argmax(axis=1)]
        variants.append((_json_records(frame), [orjson.dumps(str(v)).decode() for v in labels],
                         [orjson.dumps([float(p) for p in row]).decode() for row in proba]))
    truth = [orjson.dumps(v).decode() for v in df["churn"]]
    violation = orjson.dumps([{"field": "tenure", "rule": "type", "severity": "error"}]
                             ).decode()
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(df), rows)
    now = time.time()
    ts = np.sort(rng.uniform(now - 365 * DAY, now - 60, rows))
    latency = rng.gamma(2.0, 2.0, rows)
    refused = rng.random(rows) < 0.01
    engine = open_database(database)
    chunk = 50_000
    half = now - 182 * DAY
    for start in range(0, rows, chunk):
        batch, labels = [], []
        for k in range(start, min(rows, start + chunk)):
            inputs, preds, probas = variants[int(ts[k] > half)]
            i = int(pick[k])
            role = "shadow" if ts[k] > now - 30 * DAY and k % 10 == 0 else "champion"
            bad = bool(refused[k]) and role == "champion"
            batch.append({"request_id": f"r{k}", "row": 0, "ts": float(ts[k]), "model": NAME,
                          "version": "2" if role == "shadow" else "1", "role": role,
                          "key": None, "inputs": inputs[i],
                          "prediction": None if bad else preds[i],
                          "proba": None if bad else probas[i],
                          "latency_ms": float(latency[k]), "status": 422 if bad else 200,
                          "violations": violation if bad else None})
            if k % 10 == 1 and not bad:
                labels.append({"request_id": f"r{k}", "row": 0, "key": None,
                               "label": truth[i], "ts": float(ts[k]) + 3600})
        with engine.begin() as conn:
            conn.execute(predictions.insert(), batch)
            if labels:
                conn.execute(feedback.insert(), labels)


def _audit(database: str) -> None:
    """A year of decisions: a retrain, a refusal or a promotion every few days."""
    from mlwright.store import audit, open_database

    engine = open_database(database)
    with engine.connect() as conn:
        if conn.execute(audit.select().where(audit.c.action == "retrain_started")).first():
            return
    now = time.time()
    rows = []
    for day in range(0, 365, 3):
        ts = now - (365 - day) * DAY
        rows.append({"ts": ts, "action": "retrain_started", "name": NAME, "version": None,
                     "from_version": None, "actor": "mlwright-loop", "reason": "drift",
                     "evidence": None})
        rows.append({"ts": ts + 600, "action": "refuse", "name": NAME, "version": "2",
                     "from_version": "1", "actor": "mlwright-loop",
                     "reason": "refused (significant); kept as shadow", "evidence": None})
    with engine.begin() as conn:  # the store's own table definition
        conn.execute(audit.insert(), rows)


def _server(database: str, tracking: str) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = ("import uvicorn; from mlwright.ui import create_ui_app; "
            f"uvicorn.run(create_ui_app({database!r}, {tracking!r}), host='127.0.0.1', "
            f"port={port}, log_level='warning', access_log=False)")
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/ui/login").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.2)


def _times(client: Any, path: str, repeat: int) -> dict[str, Any]:
    answer = client.get(path)  # warm-up (and the first view's cost)
    answer.raise_for_status()
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        answer = client.get(path)
        seconds.append(time.perf_counter() - t0)
        answer.raise_for_status()
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "bytes": len(answer.content)}


def _render(url: str, loads: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser import _ARGS, _chromium

    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        for i in range(loads + 1):
            sizes: dict[str, int] = {}

            def count(response: Any, sizes: dict[str, int] = sizes) -> None:
                try:
                    sizes[response.url] = len(response.body())
                except Exception:  # a redirect has no body
                    sizes[response.url] = 0

            page.on("response", count)
            t0 = time.perf_counter()
            page.goto(f"{url}/ui/m/{NAME}?range=365d", wait_until="load")
            page.wait_for_function(
                """(panels) => panels.every(p => (document.getElementById("panel-" + p)
                     || {dataset: {}}).dataset.mwState === "done")""", arg=list(PANELS),
                timeout=120_000)
            seconds = time.perf_counter() - t0
            marks = page.evaluate("""(panels) => {
                const at = (p, k) => Number(document.getElementById("panel-" + p)
                                            .dataset[k] || 0);
                return {dom: performance.getEntriesByType("navigation")[0]
                             .domContentLoadedEventEnd,
                        arrived: Math.max(...panels.map(p => at(p, "mwArrivedMs"))),
                        drawn: Math.max(...panels.map(p => at(p, "mwDoneMs")))}; }""",
                                  list(PANELS))
            page.remove_listener("response", count)
            plotly = sum(n for u, n in sizes.items() if u.endswith("plotly.min.js"))
            results.append({"seconds": seconds, "bytes": sum(sizes.values()) - plotly,
                            "plotly_bytes": plotly, "requests": len(sizes), **marks})
            if i == 0:
                page.screenshot(path=str(CACHE / "dashboard.png"), full_page=True)
        browser.close()
    warm = results[1:]
    return {"first_load_s": round(results[0]["seconds"], 3),
            "render_p50_s": round(float(np.median([r["seconds"] for r in warm])), 3),
            "render_max_s": round(max(r["seconds"] for r in warm), 3),
            "payload_bytes_without_plotly": int(np.median([r["bytes"] for r in warm])),
            "first_load_bytes_without_plotly": results[0]["bytes"],
            "plotly_js_bytes": results[0]["plotly_bytes"],
            # In the browser's clock from the navigation's start (medians of the warm loads):
            # the page parsed (Plotly's JS included), the last panel's fragment arrived, the
            # last chart drawn.
            "dom_ready_ms": round(float(np.median([r["dom"] for r in warm]))),
            "last_fragment_ms": round(float(np.median([r["arrived"] for r in warm]))),
            "last_chart_ms": round(float(np.median([r["drawn"] for r in warm]))),
            "requests": results[0]["requests"], "console_errors": errors}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="records in the log")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per case")
    parser.add_argument("--loads", type=int, default=5, help="timed page loads in Chromium")
    args = parser.parse_args(argv)

    import httpx

    CACHE.mkdir(parents=True, exist_ok=True)
    database, tracking = _project(args.rows)
    _audit(database)
    from mlwright.store import monitor_windows, open_database

    with open_database(database).begin() as conn:  # every run measures the first views
        conn.execute(monitor_windows.delete())
    process, url = _server(database, tracking)
    out: dict[str, Any] = {"rows": args.rows, "repeat": args.repeat, "cpus": os.cpu_count(),
                           "load": os.getloadavg()[0], "machine": platform.platform(),
                           "python": platform.python_version(), "cold": {}, "cases": []}
    try:
        with httpx.Client(base_url=url, timeout=3600) as client:
            for label in RANGES:  # the windows' first computation (stored afterwards)
                t0 = time.perf_counter()
                client.get(f"/ui/m/{NAME}/panel/traffic?range={label}").raise_for_status()
                out["cold"][f"windows {label}"] = round(time.perf_counter() - t0, 2)
                t0 = time.perf_counter()
                client.get(f"/ui/m/{NAME}/panel/performance?range={label}").raise_for_status()
                out["cold"][f"performance {label}"] = round(time.perf_counter() - t0, 2)
            for name, path in PAGES.items():
                out["cases"].append({"kind": "page", "name": name, "path": path,
                                     **_times(client, path, args.repeat)})
            for label in RANGES:
                for panel in PANELS:
                    path = f"/ui/m/{NAME}/panel/{panel}?range={label}"
                    out["cases"].append({"kind": "panel", "name": f"{panel} ({label})",
                                         "path": path, **_times(client, path, args.repeat)})
        out["browser"] = _render(url, args.loads)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    pages = [c["p95_ms"] for c in out["cases"] if c["kind"] == "page"]
    panels = [c["p95_ms"] for c in out["cases"] if c["kind"] == "panel"]
    b = out["browser"]
    out["targets"] = {
        "page_p95_ms<=200": max(pages) <= 200, "panel_p95_ms<=100": max(panels) <= 100,
        "render_s<=2": b["render_max_s"] <= 2,
        "payload_bytes<=300KB": b["payload_bytes_without_plotly"] <= 300 * 1024}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nDashboard over {args.rows:,} records and a year of windows "
          f"(load {out['load']:.1f} on {out['cpus']} CPUs)\n")
    print("| case | p50 ms | p95 ms | bytes |\n|---|---:|---:|---:|")
    for c in out["cases"]:
        print(f"| {c['kind']}: {c['name']} | {c['p50_ms']} | {c['p95_ms']} | {c['bytes']:,} |")
    print("\nFirst computation (then stored): " + ", ".join(
        f"{k} {v} s" for k, v in out["cold"].items()))
    print(f"Chromium: full render p50 {b['render_p50_s']} s, max {b['render_max_s']} s "
          f"(first load {b['first_load_s']} s); payload without plotly.js "
          f"{b['payload_bytes_without_plotly'] / 1024:.0f} KB (first load "
          f"{b['first_load_bytes_without_plotly'] / 1024:.0f} KB; plotly.js "
          f"{b['plotly_js_bytes'] / 1024:.0f} KB, cached); console errors: "
          f"{len(b['console_errors'])}")
    print(f"In the browser (median): page ready {b['dom_ready_ms']} ms, last fragment "
          f"{b['last_fragment_ms']} ms, last chart drawn {b['last_chart_ms']} ms")
    print("Targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}"
                                  for k, v in out["targets"].items()))
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    main()
