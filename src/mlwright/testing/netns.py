"""Several hosts on one machine, each with a network stack of its own, for tests that must
cross a real network boundary: Linux network namespaces (``ip netns``) joined by veth pairs
to a bridge that lives in a namespace of its own.

Why: a ``LocalCluster`` or a server on 127.0.0.1 shares one network stack with its client,
so code that binds to loopback, connects to ``localhost`` or reads a path it assumes is
local still passes there. In a :class:`Network` each host has only its own loopback and one
address on a private subnet (``10.237.0.0/24`` by default), so such code fails as it would
between machines. Nothing is added to the machine's own network (the root namespace): the
bridge, its links and every address live in namespaces the network creates and deletes, so
all traffic stays inside them. Processes in a host see the same file system and user as the
caller (a namespace separates the network only).

Needs root and iproute2's ``ip`` (:func:`unavailable` says why not).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Host", "Network", "unavailable"]

_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")  # veth names in the bridge: at most 15 chars
_OURS = re.compile(r"^mw-(\d+)-[a-z0-9]+$")  # a namespace a Network made, and its pid
#: Seconds any one ``ip`` command may take.
_IP_TIMEOUT = 30


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stderr.strip()}")
    return done


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (not root, no ``ip``, not permitted in
    this container), or None when they can: a probe namespace is created and deleted."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run the tests as root"
    if shutil.which("ip") is None:
        return "iproute2's 'ip' command is missing (apt-get install iproute2)"
    probe = f"mw-{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"this machine does not allow network namespaces: {exc}"
    with contextlib.suppress(Exception):
        _ip("netns", "del", probe)
    return None


@dataclass(frozen=True)
class Host:
    """One host of a :class:`Network`: its namespace and its address (None: isolated, only
    its own loopback)."""

    name: str
    namespace: str
    address: str | None

    def prefix(self) -> list[str]:
        """The command prefix that runs a program on this host."""
        return ["ip", "netns", "exec", self.namespace]


@dataclass
class Network:
    """Hosts named ``hosts`` on one bridge, and ``isolated`` hosts on none; a host named
    in ``reaches`` has a route to the hosts listed for it only (as behind a firewall that
    lets it open connections to those alone; they still reach it). Use as a context
    manager: everything (processes started through :meth:`start` or still running in a
    host, links, namespaces) is removed on exit, also when the body failed.

    Namespaces are named ``mw-<pid>-<host>``, so that runs at the same time never share
    one; addresses are ``<subnet>.2``, ``.3``, ... in the order of ``hosts``.
    """

    hosts: Sequence[str]
    isolated: Sequence[str] = ()
    reaches: Mapping[str, Sequence[str]] = field(default_factory=dict)
    subnet: str = "10.237.0"
    _hosts: dict[str, Host] = field(default_factory=dict, init=False)
    _made: list[str] = field(default_factory=list, init=False)  # namespaces, in order
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        names = [*self.hosts, *self.isolated]
        bad = [n for n in names if not _NAME.match(n) or n == "br"]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"host names must be distinct, lowercase letters and digits, at "
                             f"most 10 characters, not 'br': {names}")
        unknown = set(self.reaches).union(*self.reaches.values()) - set(self.hosts)
        if unknown:
            raise ValueError(f"reaches names hosts that are not on the bridge: {unknown}")
        if len(self.hosts) > 250:
            raise ValueError("at most 250 hosts on one /24 subnet")
        prefix = f"mw-{os.getpid()}"
        self.bridge = f"{prefix}-br"
        for i, name in enumerate(self.hosts):
            self._hosts[name] = Host(name, f"{prefix}-{name}", f"{self.subnet}.{i + 2}")
        for name in self.isolated:
            self._hosts[name] = Host(name, f"{prefix}-{name}", None)

    def __getitem__(self, name: str) -> Host:
        return self._hosts[name]

    @property
    def cidr(self) -> str:
        return f"{self.subnet}.0/24"

    def up(self) -> Network:
        """Create the namespaces, the bridge and one veth pair per bridged host."""
        atexit.register(self.close)  # also when the caller never reaches its own cleanup
        _sweep_stale()
        try:
            self._add(self.bridge)
            _ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.bridge, "link", "set", "br0", "up")
            for host in self._hosts.values():
                self._add(host.namespace)
                if host.address is None:
                    continue
                # Both ends are made where they live: the machine's namespace never holds
                # one, even for a moment.
                end = f"v-{host.name}"
                _ip("-n", self.bridge, "link", "add", end, "type", "veth", "peer", "name",
                    "eth0", "netns", host.namespace)
                _ip("-n", self.bridge, "link", "set", end, "master", "br0", "up")
                peers = self.reaches.get(host.name)
                _ip("-n", host.namespace, "addr", "add",
                    f"{host.address}/{24 if peers is None else 32}", "dev", "eth0")
                _ip("-n", host.namespace, "link", "set", "eth0", "up")
                for peer in peers or ():  # a /32 address: no route but these
                    _ip("-n", host.namespace, "route", "add", str(self[peer].address),
                        "dev", "eth0")
        except BaseException:
            self.close()
            raise
        return self

    def _add(self, namespace: str) -> None:
        _ip("netns", "add", namespace)
        self._made.append(namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")

    def run(self, host: str, argv: Sequence[str], *, timeout: float,
            env: Mapping[str, str] | None = None, cwd: str | Path | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on ``host`` to its end (at most ``timeout`` seconds); its output."""
        return subprocess.run([*self[host].prefix(), *argv], capture_output=True, text=True,
                              timeout=timeout, env=dict(env) if env is not None else None,
                              cwd=cwd)

    def start(self, host: str, argv: Sequence[str], *, log: Path,
              env: Mapping[str, str] | None = None, cwd: str | Path | None = None
              ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` in a session of its own, its output to ``log``; it
        is stopped (with its children) when the network closes."""
        with open(log, "ab") as out:
            process = subprocess.Popen([*self[host].prefix(), *argv], stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       env=dict(env) if env is not None else None, cwd=cwd)
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], *, grace: float = 30.0) -> int:
        """Stop one process started by :meth:`start` (SIGTERM to its session, SIGKILL after
        ``grace`` seconds); its exit code."""
        _stop([process], grace=grace)
        self._processes.remove(process)
        return int(process.returncode)

    def connects(self, host: str, address: str, port: int, *, timeout: float = 3.0) -> str:
        """Whether a TCP connection from ``host`` to ``address:port`` opens: "open", or
        the error's name (ECONNREFUSED, ENETUNREACH, timeout, ...)."""
        probe = ("import errno, socket, sys\n"
                 "try:\n"
                 f"    socket.create_connection(({address!r}, {port}), timeout={timeout}"
                 ").close()\n"
                 "    print('open')\n"
                 "except TimeoutError:\n"
                 "    print('timeout')\n"
                 "except OSError as e:\n"
                 "    print(errno.errorcode.get(e.errno, str(e)))\n")
        done = self.run(host, [sys.executable, "-I", "-c", probe], timeout=timeout + 30)
        if done.returncode != 0:
            raise RuntimeError(f"the connection probe on {host} failed: {done.stderr}")
        return done.stdout.strip()

    def pids(self, host: str) -> list[int]:
        """The processes running in ``host``'s namespace (any started there, by anyone)."""
        done = subprocess.run(["ip", "netns", "pids", self[host].namespace],
                              capture_output=True, text=True, timeout=_IP_TIMEOUT)
        return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []

    def close(self) -> None:
        """Stop the processes, then delete the namespaces (which deletes their links and
        the bridge). Safe to call twice, and after a partial :meth:`up`."""
        atexit.unregister(self.close)
        _stop(self._processes)
        self._processes.clear()
        for namespace in reversed(self._made):
            _delete(namespace)
        self._made.clear()

    def __enter__(self) -> Network:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _delete(namespace: str) -> None:
    """Kill what still runs in ``namespace`` (it was started there: a daemon such as
    PostgreSQL's postmaster; a namespace with processes outlives its deletion), delete it."""
    done = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True,
                          timeout=_IP_TIMEOUT)
    for pid in (int(p) for p in done.stdout.split()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        _ip("netns", "del", namespace)


def _sweep_stale() -> None:
    """Delete the namespaces of Networks whose process is gone (killed before it could
    clean up, e.g. a test run past its timeout): named ``mw-<pid>-<host>``, that pid no
    longer running. Those of live processes (a run at the same time) are left alone."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            timeout=_IP_TIMEOUT)
    for line in listed.stdout.splitlines():
        name = line.split(" ", 1)[0]
        match = _OURS.match(name)
        if match is None:
            continue
        try:
            os.kill(int(match[1]), 0)
        except ProcessLookupError:
            _delete(name)
        except PermissionError:
            pass  # alive, another user's


def _stop(processes: Iterable[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """SIGTERM each process's session, SIGKILL what is left after ``grace`` seconds
    (children whose leader has gone are ended with their namespace, see ``close``)."""
    alive = [p for p in processes if p.poll() is None]
    for p in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in alive:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.0, deadline - time.monotonic()))
    for p in alive:
        if p.poll() is None:  # its group is still ours while its leader lives
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
