"""Real servers the production tests start and stop themselves, on free ports of
127.0.0.1: an S3-compatible server (moto's standalone server), redis-server,
a PostgreSQL cluster in a temporary folder, and gunicorn with the app.

None of them touches the machine's own Redis or PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout} s")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Process:
    """A child process in its own session, logged to a file, stopped for good."""

    def __init__(self, args: list[str], *, log: Path, env=None, cwd=ROOT, **kw):
        self.args, self.log_path = args, log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kw,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")[-6000:]

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


# --- S3 (moto) ----------------------------------------------------------------------


class S3Server:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            log=tmp / "moto.log",
        )
        wait_until(lambda: port_open(self.port), 60, "the S3 server")

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> set[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}

    def env(self, bucket: str) -> dict[str, str]:
        """What SNAPCLASS_STORAGE=s3 reads, for a child process."""
        return {
            "SNAPCLASS_STORAGE": "s3",
            "SNAPCLASS_S3_BUCKET": bucket,
            "SNAPCLASS_S3_ENDPOINT_URL": self.url,
            "SNAPCLASS_S3_REGION": "us-east-1",
            "SNAPCLASS_S3_ACCESS_KEY_ID": "test",
            "SNAPCLASS_S3_SECRET_ACCESS_KEY": "test",
        }

    def storages(self, bucket: str) -> dict:
        """The STORAGES setting SNAPCLASS_STORAGE=s3 builds, for this process."""
        return {
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": bucket,
                    "endpoint_url": self.url,
                    "region_name": "us-east-1",
                    "access_key": "test",
                    "secret_key": "test",
                    "file_overwrite": False,
                    "addressing_style": "path",
                    "signature_version": "s3v4",
                },
            },
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
            },
        }

    def stop(self) -> None:
        self.process.stop()


# --- Redis ------------------------------------------------------------------------


class RedisServer:
    """redis-server on a free port, without persistence: a restart loses its data,
    as a crashed cache or broker would."""

    def __init__(self, tmp: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.tmp = tmp
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Process | None = None
        self.start()

    def start(self) -> None:
        self.process = Process(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            log=self.tmp / f"redis-{self.port}.log",
        )
        wait_until(self.ping, 30, "redis-server")

    def ping(self) -> bool:
        import redis

        return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


# --- PostgreSQL ---------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip(f"PostgreSQL's {name} is not installed")
    return found[-1]


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb in a temporary folder) on a free port.

    initdb refuses to run as root, so as root the cluster belongs to `postgres`.
    """

    def __init__(self, tmp: Path | None = None) -> None:
        self.port = free_port()
        # A folder of its own: pytest's temporary folders are private to root.
        self.home = Path(tempfile.mkdtemp(prefix="snapclass-pg-"))
        self.dir = self.home / "pgdata"
        self.sockets = self.home / "sock"
        self.sockets.mkdir()
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            owner = pwd.getpwnam(self.user)
            for path in (self.home, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run(
            [_pg_bin("initdb"), "-D", str(self.dir), "-U", "postgres", "-A", "trust"],
        )
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.start()

    def _run(self, args: list[str]) -> None:
        if self.user:
            args = ["runuser", "-u", self.user, "--", *args]
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def _ctl(self, *args: str) -> None:
        self._run(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(self.dir),
                "-l",
                str(self.home / "postgres.log"),
                "-w",
                "-t",
                "60",
                *args,
            ]
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.sockets} -c fsync=off"
        )
        self._ctl("-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def restart(self, down_for: float = 0.0) -> None:
        self.stop("fast")
        time.sleep(down_for)
        self.start()

    def remove(self) -> None:
        """Stop for good and delete the cluster."""
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.home, ignore_errors=True)

    def database_url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)


# --- gunicorn --------------------------------------------------------------------


class Gunicorn:
    """`gunicorn config.wsgi` on a free port with `workers` sync workers."""

    def __init__(self, env: dict[str, str], tmp: Path, *, workers: int = 3) -> None:
        self.port = free_port()
        self.workers = workers
        self.process = Process(
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            log=tmp / f"gunicorn-{self.port}.log",
            env=env,
        )
        wait_until(
            lambda: port_open(self.port) and len(self.worker_pids()) == workers,
            90,
            "gunicorn",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def rss_mb(self, pid: int) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for {pid}")

    def stop(self) -> None:
        self.process.stop()


def production_env(**extra: str) -> dict[str, str]:
    """A valid production environment (settings refuse to start without one)."""
    import secrets

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "SNAPCLASS_", "CACHE_URL"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env
