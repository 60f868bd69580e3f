"""Integration tests: real PostgreSQL, real Redis, real Celery worker processes.

`make test` runs them with DATABASE_URL pointing at PostgreSQL. When a service is not
reachable they are skipped with a message, except under CI, where that is a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _unavailable(what: str) -> None:
    message = f"{what} is not reachable; integration tests need it (see README)."
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        _unavailable(f"Redis at {url}")
    return url


@pytest.fixture(scope="session")
def postgres(django_db_setup, django_db_blocker) -> str:
    if connection.vendor != "postgresql":
        _unavailable("PostgreSQL (DATABASE_URL is not a postgres:// URL)")
    return connection.settings_dict["NAME"]


@pytest.fixture
def broker(redis_url):
    """This process's Celery app talks to Redis (make test-integration sets it)."""
    from config.celery_app import app

    if not str(app.conf.broker_url).startswith("redis://"):
        _unavailable("A Redis broker (set CELERY_BROKER_URL=redis://...)")
    client = redis.Redis.from_url(app.conf.broker_url)
    for queue in ("default", "scrape", "train"):
        client.delete(queue)
    return app.conf.broker_url


def _database_url(name: str) -> str:
    base = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(base._replace(path=f"/{name}"))


class WorkerProcess:
    """A `celery worker` in a child process, on the test database and broker."""

    def __init__(self, *, queues: str, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--queues",
                queues,
                "--pool=solo",
                "--concurrency=1",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
                "--hostname",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ready." in self.log_path.read_bytes():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")[-5000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def start_worker(postgres, broker, transactional_db, settings, tmp_path):
    """Start a live worker; the test's committed rows and media are visible to it."""
    workers: list[WorkerProcess] = []

    def start(queues: str = "default,scrape,train", **extra_env: str) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url(postgres),
            "CELERY_BROKER_URL": broker,
            "REDIS_URL": broker,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        worker = WorkerProcess(
            queues=queues, env=env, log=tmp_path / f"worker-{len(workers)}.log"
        )
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {message or predicate}"
    )
