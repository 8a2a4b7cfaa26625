"""``mlwright run``: the server, the monitor and the loop as one long-lived service.

The server runs in its own process (``python -m mlwright.loop.service CONFIG``: the
champion, followed as its alias moves, plus the retrain webhook), so nothing the loop does
(comparisons, monitoring) takes CPU time from a request's event loop; retraining runs in
worker processes of its own. Every ``loop.check_every`` the service runs one pass
(:func:`mlwright.loop.runner.run_once`: rollback check, monitor + triggers, retrain, compare,
decide). SIGTERM or SIGINT: a running retrain is killed (nothing half-registered), the server
gets SIGTERM (it answers in-flight requests and flushes the prediction log), then it exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlwright._logging import get_logger
from mlwright.exceptions import MlwrightError

__all__ = ["SERVER_EXTENSIONS", "LoopService", "serve_main"]

# Routes of later stages that `mlwright serve` and `mlwright run` add by import path (serve/
# never imports them): GET /v1/monitor with its drift gauges; POST /v1/hooks/retrain (always
# behind an API key).
SERVER_EXTENSIONS = ("mlwright.monitor.routes:mount", "mlwright.loop.routes:mount")

log = get_logger(__name__)


def serve_main(config_path: str) -> None:
    """The server process: the champion's REST API plus ``POST /v1/hooks/retrain``."""
    import uvicorn

    from mlwright.config import load_config
    from mlwright.serve.app import create_app

    config = load_config(config_path)
    db = config.store.database_url()
    app = create_app(f"{config.name}@champion", config=config.serve, database_url=db,
                     tracking_uri=config.store.resolved_tracking_uri(),
                     extensions=SERVER_EXTENSIONS, project=config)
    uvicorn.Server(uvicorn.Config(app, host=config.serve.host, port=config.serve.port,
                                  access_log=False, log_level="warning",
                                  timeout_graceful_shutdown=30)).run()


class LoopService:
    """Server process + periodic passes until ``stop`` is set."""

    def __init__(self, config: Any, config_path: str | Path, *, serve: bool = True,
                 on_pass: Callable[[Any], None] | None = None,
                 on_step: Callable[[str, Any], None] | None = None,
                 train_options: dict[str, Any] | None = None) -> None:
        self.config = config
        self.config_path = Path(config_path)
        self.serve = serve
        self.on_pass = on_pass
        self.on_step = on_step
        self.train_options = train_options or {}
        self.server: subprocess.Popen[bytes] | None = None
        self.passes = 0

    def _start_server(self) -> None:
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                   else "")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "mlwright.loop.service", str(self.config_path)], env=env,
            stdin=subprocess.DEVNULL)
        log.info("server started (pid %d) on %s:%d", self.server.pid, self.config.serve.host,
                 self.config.serve.port)

    def _stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()  # SIGTERM: uvicorn drains, the log is flushed
            try:
                self.server.wait(60)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def run(self, stop: threading.Event) -> None:
        from mlwright.loop.live import parse_interval
        from mlwright.loop.runner import _champion, open_registry, run_once

        every = parse_interval(self.config.loop.check_every, field="loop.check_every")
        registry = open_registry(self.config)
        try:
            if _champion(registry, self.config.name) is None and not stop.is_set():
                # Nothing to serve yet: train the first model, which becomes the champion.
                result = run_once(self.config, force="no champion yet", registry=registry,
                                  on_step=self.on_step, stop=stop, **self.train_options)
                self.passes += 1
                if self.on_pass:
                    self.on_pass(result)
            if self.serve and not stop.is_set():
                self._start_server()
            while not stop.is_set():
                if self.server is not None and self.server.poll() is not None:
                    raise MlwrightError(
                        f"The server process exited with code {self.server.returncode}; see "
                        f"its output above (a port in use? serve.port = "
                        f"{self.config.serve.port}).")
                try:
                    passed = run_once(self.config, registry=registry, on_step=self.on_step,
                                      stop=stop, **self.train_options)
                except MlwrightError as exc:  # one bad pass must not end the service
                    log.error("loop pass failed: %s", exc)
                else:
                    if self.on_pass:
                        self.on_pass(passed)
                self.passes += 1
                stop.wait(every)
        finally:
            self._stop_server()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m mlwright.loop.service CONFIG")
    serve_main(sys.argv[1])
