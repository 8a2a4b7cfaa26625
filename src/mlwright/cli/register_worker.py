"""The registration worker: ``python -m mlwright.cli.register_worker [TRACKING_URI]``.

``mlwright train`` registers its model last, and most of that is imports: MLflow (about
1 s with the training's stack loaded) and its store (SQLAlchemy's models and alembic, about
1 s more), a third of a ``--budget 5`` command, which Python cannot overlap with the
report in the same process (the report took 1.6 s alone and 3.4 s beside them in a
thread). This process does them on the other core: ``mlwright train`` starts it with the
search (from ``PREFETCH_FROM`` s of training) or once the search's deadline has passed,
writes the report meanwhile, then sends it one job, a JSON line on stdin (the run folder,
the name, the config, the alias and the search's trials), and reads one JSON line back:
the version, or the error to raise. The run folder holds the rest of the evidence (``metrics.json``,
the contract, the sample); the model itself is not unpickled here.

A registration is one transaction (``Registry.register``): a worker killed part-way leaves
no version, and :class:`RegistrationWorker` then registers in the command's own process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from mlwright._json import dumps
from mlwright._logging import get_logger

__all__ = ["RegistrationWorker", "main"]

log = get_logger(__name__)


class RegistrationWorker:
    """The command's handle on one worker process (see the module docstring)."""

    def __init__(self, tracking_uri: str | None) -> None:
        # Read back only when the worker ends without an answer; closed by close().
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "mlwright.cli.register_worker",
             *([tracking_uri] if tracking_uri else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)

    def register(self, folder: Path, *, name: str, config: dict[str, Any],
                 alias: str | None, trials: Any) -> dict[str, Any] | None:
        """The registered version (``name``, ``version``, ``aliases``, ``tracking_uri``);
        None when the worker is gone without an answer (register in this process then).
        Raises the worker's registration error as a :class:`RegistryError`."""
        from mlwright.exceptions import RegistryError

        if self._proc is None:
            return None
        job = {"folder": str(folder), "name": name, "config": config, "alias": alias,
               "trials": None if trials is None else trials.to_dict(orient="records")}
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(dumps(job).encode() + b"\n")
            self._proc.stdin.close()
        except OSError:  # it died before reading the job
            self._gone()
            return None
        # Its answer is its last line; it exits at once after it (exit_now: no teardown).
        answer: Any = None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError):
                answer = json.loads(line)
        if not isinstance(answer, dict):
            self._gone()
            return None
        if "error" in answer:
            raise RegistryError(answer["error"])
        return answer

    def _gone(self) -> None:
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-3:]
        log.warning("the registration worker ended without registering (%s); registering "
                    "in this process", " / ".join(tail) or "no output")
        self.close()

    def close(self) -> None:
        """Stop the worker if it still runs (a command that failed before registering)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None
        self._stderr.close()


def _answer(value: dict[str, Any]) -> None:
    sys.stdout.write(dumps(value) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Everything registration needs, imported and opened before the job comes.
    import pandas as pd

    from mlwright.exceptions import MlwrightError
    from mlwright.registry import Registry
    from mlwright.registry.tracking import log_training  # noqa: F401  (MLflow's imports)
    from mlwright.run import RunFolder

    registry = Registry(args[0] if args else None)
    with contextlib.suppress(Exception):  # the job's registration reports it
        _ = registry.client
    # MLflow checks a model's requirements against the installed distributions on its first
    # save in a process, mapping every distribution's files to its modules (0.5-1.2 s): a
    # private helper of its, so only a warm-up, its failure ignored.
    with contextlib.suppress(Exception):
        from mlflow.utils.requirements_utils import _init_packages_to_modules_map

        _init_packages_to_modules_map()
    line = sys.stdin.readline()
    if not line.strip():  # the command ended without registering
        return 0
    job = json.loads(line)
    try:
        folder = Path(job["folder"])
        result = RunFolder(folder).load(model=False)
        trials = None if job["trials"] is None else pd.DataFrame(job["trials"])
        info = registry.register(result, folder, name=job["name"], config=job["config"],
                                 alias=job["alias"], trials=trials)
    except MlwrightError as exc:
        _answer({"error": str(exc)})
        return 1
    _answer({"name": info.name, "version": info.version, "aliases": info.aliases,
             "tracking_uri": registry.tracking_uri})
    return 0


if __name__ == "__main__":
    from mlwright.cli._common import exit_now

    exit_now(main())
