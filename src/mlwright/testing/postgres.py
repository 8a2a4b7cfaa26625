"""A real PostgreSQL server for tests and benchmarks, started from Debian's server binaries.

:class:`PostgresServer` runs ``initdb`` in a temporary folder and ``pg_ctl start`` on a free
loopback port (trust authentication, no TCP outside 127.0.0.1, its socket in its own
folder), and can ``stop``/``start`` it again to test what happens while the database is
down. ``host``, ``clients`` and ``prefix`` put it on another address for other hosts: the
multi-host test runs it in a network namespace of its own (``mlwright.testing.netns``).
PostgreSQL refuses to run as root: as root, the binaries run as the ``postgres`` user (which
Debian's package creates) on a folder handed to it.

A missing binary is an error that says how to install it, never a skip: ``make test``
(``make postgres``) installs Debian's ``postgresql`` package when it runs as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mlwright.exceptions import ConfigError

__all__ = ["PG_BIN", "PostgresServer", "find_binaries"]

#: Where Debian's ``postgresql-15`` package puts the server binaries; ``MLWRIGHT_PG_BIN``
#: points elsewhere (another version, another distribution).
PG_BIN = Path(os.environ.get("MLWRIGHT_PG_BIN", "/usr/lib/postgresql/15/bin"))


def find_binaries(bin_dir: Path = PG_BIN) -> Path:
    """``bin_dir`` when it holds ``initdb`` and ``pg_ctl``, else a ConfigError saying how to
    install them."""
    missing = [name for name in ("initdb", "pg_ctl", "postgres")
               if not (bin_dir / name).exists()]
    if missing:
        raise ConfigError(
            f"The PostgreSQL tests need the server binaries {', '.join(missing)} in "
            f"{bin_dir}, which are missing. Install them with 'make postgres' (as root: "
            f"apt-get install postgresql), or set MLWRIGHT_PG_BIN to the folder that holds "
            f"initdb and pg_ctl.")
    return bin_dir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; ``url`` reaches its ``mlwright``
    database through psycopg 3. Use as a context manager, or ``start()`` / ``close()``.

    Args:
        host: the one address it listens on (default loopback).
        port: its port (default: a free loopback port when ``host`` is loopback, else 5432).
        clients: networks (CIDR, e.g. ``10.237.0.0/24``) whose hosts may connect over TCP,
            with trust authentication like loopback: only for a private test network.
        prefix: a command that every binary runs under, e.g. ``ip netns exec NS`` to run
            the server, and the commands that reach it, on another network stack.
    """

    def __init__(self, *, bin_dir: Path = PG_BIN, database: str = "mlwright",
                 settings: dict[str, str] | None = None, host: str = "127.0.0.1",
                 port: int | None = None, clients: Sequence[str] = (),
                 prefix: Sequence[str] = ()) -> None:
        self.bin = find_binaries(bin_dir)
        # Its own folder under the system's temp folder: the postgres user must reach it
        # (pytest's tmp_path sits under a folder only root may enter).
        self.folder = Path(tempfile.mkdtemp(prefix="mlwright-pg-"))
        self.data = self.folder / "data"
        self.host = host
        self.port = port or (_free_port() if host == "127.0.0.1" else 5432)
        self.clients = list(clients)
        self.prefix = list(prefix)
        self.database = database
        self.settings = {"fsync": "off", "synchronous_commit": "off",
                         "full_page_writes": "off", "max_connections": "200",
                         **(settings or {})}
        self._user: str | None = None
        if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ConfigError(
                    "PostgreSQL cannot run as root and there is no 'postgres' user to run it "
                    "as; install Debian's postgresql package (it creates the user) or run "
                    "the tests as another user.") from None
            self._user = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{self.database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        command = [*self.prefix, *command]  # outermost: `ip netns exec` needs root
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}\n{done.stderr}")
        return done

    def init(self) -> None:
        """``initdb`` (trust authentication, UTF-8) and the ``mlwright`` database."""
        self.data.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            shutil.chown(self.folder, self._user)
            shutil.chown(self.data, self._user)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
        if self.clients:
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.writelines(f"host all all {cidr} trust\n" for cidr in self.clients)
        self.start()
        self._psql(f'CREATE DATABASE "{self.database}"')

    def _psql(self, command: str) -> None:
        self._run(str(self.bin / "psql"), "-h", self.host, "-p", str(self.port), "-U",
                  "postgres", "-d", "postgres", "-qc", command)

    def start(self) -> None:
        options = " ".join([f"-p {self.port}", f"-c listen_addresses={self.host}",
                            f"-k {self.folder}",
                            *(f"-c {k}={v}" for k, v in self.settings.items())])
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.folder / "server.log"), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop`` (``fast``: open sessions are ended, as on a restart)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                  "-t", "60", "stop", check=False)

    def running(self) -> bool:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status",
                         check=False).returncode == 0

    def wait_accepting(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.prefix:  # another network stack: ask from there
                if self._run(str(self.bin / "pg_isready"), "-q", "-h", self.host, "-p",
                             str(self.port), "-t", "1", check=False).returncode == 0:
                    return
                time.sleep(0.1)
                continue
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL on port {self.port} did not come up")

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        self._psql(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{name}"

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.init()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
