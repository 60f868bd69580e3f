"""POST /api/v1/predict/ through gunicorn on loopback vs in-process ONNX Runtime.

The model is EfficientNet-Lite0 at 224 px (the default backbone): its ImageNet
body with an untrained head, exported as training does; latency depends on the
architecture, not on what the head learnt. Both sides
decode, cap and preprocess the same demo JPEG the same way and run ONNX Runtime
with one intra-op thread (SNAPCLASS_PREDICT_THREADS' default), measured in the
same run. Then 8 concurrent clients for 20 s, and each web worker's memory.

The load figure: 3 gunicorn workers with the throttle on, its counters in a Redis
of the bench's own (redis-server on a free port, as in production: one shared
budget), 8 and then 32 concurrent clients for 30 s each; the p95 latency at 32
beside the one at 8, and the errors at 32 (none allowed).

    python -m bench predict
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from bench import Figure
from bench.common import ROOT, child_env, run_child, scratch

IMAGE = ROOT / "datasets" / "demo" / "images" / "camera" / "fluent-camera-1.jpg"
LABELS = ["TV", "camera", "man", "woman"]
ARCH, SIZE = "efficientnet_lite0", 224
WORKERS = 2
N_LATENCY = 300
WARMUP = 30
CLIENTS, SECONDS = 8, 20.0
LOAD_WORKERS, LOAD_SECONDS = 3, 30.0
# What the API reads from settings, at their defaults.
MAX_SIDE, MIN_SIDE, MAX_PIXELS = 512, 32, 40_000_000


# --- model and database (child processes: this one never sets Django up) --------


def model_dir() -> Path:
    return scratch(f"model-{ARCH}-{SIZE}-imagenet")


def child_export(folder: str) -> dict:
    """weights, meta.json and model.onnx of an untrained model, as training writes."""
    import torch

    from training.ml import export
    from training.ml.backbones import get_backbone
    from training.ml.nets import create_model

    out = Path(folder)
    if not (out / export.META_FILE).exists():
        backbone = get_backbone(ARCH)
        # ImageNet body, untrained head: realistic activations (an all-random
        # network drifts into denormal floats, which WebAssembly runs slowly).
        torch.manual_seed(0)
        model = create_model(backbone, len(LABELS), pretrained=True).eval()
        sha = export.save_weights(model, out / export.WEIGHTS_FILE)
        how = export.export_onnx(model, out / export.ONNX_FILE, SIZE)
        meta = export.make_meta(
            architecture=ARCH,
            label_names=LABELS,
            image_size=SIZE,
            resize_method="squish",
            mean=backbone.mean,
            std=backbone.std,
            weights_sha256=sha,
            extra=how,
        )
        export.write_meta(meta, out / export.META_FILE)
    return {"ok": True}


def child_install(folder: str) -> dict:
    """A fresh database whose current model is a copy of the exported one."""
    import shutil

    from bench.common import django_ready

    django_ready()
    from django.conf import settings

    from classifier.registry import model_version_promote, model_version_register

    target = Path(settings.MEDIA_ROOT) / "models" / "bench"
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, target)
    version = model_version_register(
        run=None, artifacts_dir=target, result=SimpleNamespace(label_names=LABELS)
    )
    model_version_promote(version=version)
    return {"version": version.pk, "onnx": str(target / "model.onnx")}


def prepare(work: Path, **env: str) -> tuple[dict[str, str], dict]:
    """Export the model (cached), then a fresh database and media with it current."""
    run_child("bench.predict", "export", str(model_dir()), env=child_env(work))
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"):
        (work / name).unlink(missing_ok=True)
    settings = {
        "DJANGO_DEBUG": "false",
        "SNAPCLASS_PREDICT_RATE": "",
        "SNAPCLASS_PREDICT_THREADS": "1",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    environment = child_env(work, **{**settings, **env})
    installed = run_child("bench.predict", "install", str(model_dir()), env=environment)
    return environment, installed


# --- the web server ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """`gunicorn config.wsgi` on 127.0.0.1 with WORKERS sync workers."""

    def __init__(self, env: dict[str, str], workers: int = WORKERS) -> None:
        self.workers = workers
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--timeout",
                "120",
                "--backlog",
                "256",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = request(self.port, "GET", "/api/v1/models/current/")
                if status == 200 and len(self.worker_pids()) == workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not start")

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

    def rss_mb(self) -> dict[int, float]:
        out = {}
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[pid] = int(line.split()[1]) / 1024
        return out

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="image"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def request(
    port: int, method: str, path: str, body: bytes | None = None, ctype: str = ""
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = ctype
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- measurements -----------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process_predictor(onnx_path: str, data: bytes):
    """The API's work without the web: decode, cap, preprocess, run, softmax."""
    import numpy as np
    import onnxruntime as ort

    from datasets.imaging import decode_image
    from training.ml.preprocess import preprocess

    meta = json.loads((Path(onnx_path).parent / "meta.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        Path(onnx_path).read_bytes(), options, providers=["CPUExecutionProvider"]
    )

    def once() -> list[float]:
        img = decode_image(
            data, min_side=MIN_SIDE, max_pixels=MAX_PIXELS, max_side=MAX_SIDE
        )
        (logits,) = session.run(["logits"], {"input": preprocess(img, meta)})
        z = logits[0].astype(np.float64)
        e = np.exp(z - z.max())
        return (e / e.sum()).tolist()

    return once


def latencies(port: int, body: bytes, ctype: str, local, n: int):
    """n HTTP requests and n in-process calls, interleaved so that both see the
    same machine (other work on it slows both alike)."""
    for _ in range(WARMUP):
        local()
    http_ms, local_ms, answer, probs = [], [], {}, []
    for i in range(n):
        for side in ("http", "local") if i % 2 else ("local", "http"):
            started = time.perf_counter()
            if side == "local":
                probs = local()
                local_ms.append((time.perf_counter() - started) * 1000)
                continue
            status, content = request(port, "POST", "/api/v1/predict/", body, ctype)
            http_ms.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"predict answered {status}: {content[:300]!r}")
            answer = json.loads(content)
    return http_ms, local_ms, answer, probs


def load(
    port: int, body: bytes, ctype: str, clients: int, seconds: float
) -> tuple[list[float], int, int, float]:
    """(latencies in ms, successes, errors, seconds): `clients` threads posting
    back to back for `seconds`. Anything but a 200 is an error, 429s included."""
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()

    def client() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                status, _ = request(port, "POST", "/api/v1/predict/", body, ctype)
                ok = status == 200
            except OSError:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                counts["ok" if ok else "errors"] += 1
                latencies.append(elapsed)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, counts["ok"], counts["errors"], time.monotonic() - started


class RedisServer:
    """A redis-server of the bench's own on a free port, without persistence."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
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
                str(work),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def load_figures(work: Path, body: bytes, ctype: str) -> list[Figure]:
    """3 workers, the shared Redis throttle on: p95 at 32 clients beside 8."""
    redis = RedisServer(work)
    try:
        env, _ = prepare(
            work,
            CACHE_URL=redis.url,
            # On, and far above what the bench sends: every request counts its
            # image in Redis, none is refused.
            SNAPCLASS_PREDICT_RATE="100000000/min",
        )
        server = Gunicorn(env, workers=LOAD_WORKERS)
        try:
            warm_every_worker(server, body, ctype)
            ms8, ok8, errors8, s8 = load(server.port, body, ctype, 8, LOAD_SECONDS)
            ms32, ok32, errors32, s32 = load(server.port, body, ctype, 32, LOAD_SECONDS)
        finally:
            server.stop()
    finally:
        redis.stop()
    p95_8, p95_32 = percentile(ms8, 0.95), percentile(ms32, 0.95)
    return [
        Figure(
            name="predict p95 latency, 32 concurrent clients for 30 s (3 workers, "
            "Redis throttle)",
            value=p95_32,
            baseline=p95_8,
            unit="ms",
            better="lower",
            # 4x the clients on the same workers wait about 4x as long in line.
            target_ratio=4.5,
            notes=(
                f"baseline: p95 with 8 clients on the same server; 32 clients: "
                f"{ok32 / s32:.1f} req/s, median {statistics.median(ms32):.0f} ms, "
                f"{errors32} errors; 8 clients: {ok8 / s8:.1f} req/s, median "
                f"{statistics.median(ms8):.0f} ms, {errors8} errors; "
                f"load average {os.getloadavg()[0]:.1f}"
            ),
        ),
        Figure(
            name="predict errors, 32 concurrent clients for 30 s",
            value=errors32,
            baseline=ok32 + errors32,
            unit="errors",
            better="lower",
            target_ratio=0.0,
            notes="errors / requests; anything but a 200 counts, 429s included",
        ),
    ]


def throughput(port: int, body: bytes, ctype: str) -> tuple[int, int, float]:
    """(successes, errors, seconds) for CLIENTS threads posting for SECONDS."""
    stop = time.monotonic() + SECONDS
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()

    def client() -> None:
        while time.monotonic() < stop:
            try:
                status, _ = request(port, "POST", "/api/v1/predict/", body, ctype)
                ok = status == 200
            except OSError:
                ok = False
            with lock:
                counts["ok" if ok else "errors"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["ok"], counts["errors"], time.monotonic() - started


def warm_every_worker(server: Gunicorn, body: bytes, ctype: str) -> None:
    """Concurrent requests until each worker has loaded the model."""
    threads = [
        threading.Thread(
            target=lambda: [
                request(server.port, "POST", "/api/v1/predict/", body, ctype)
                for _ in range(WARMUP)
            ]
        )
        for _ in range(server.workers * 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run() -> list[Figure]:
    work = scratch("predict")
    env, installed = prepare(work)
    data = IMAGE.read_bytes()
    body, ctype = multipart(data, IMAGE.name)

    server = Gunicorn(env)
    try:
        idle = server.rss_mb()
        warm_every_worker(server, body, ctype)
        local = in_process_predictor(installed["onnx"], data)
        http_ms, local_ms, answer, local_probs = latencies(
            server.port, body, ctype, local, N_LATENCY
        )
        loaded = server.rss_mb()
        ok, errors, seconds = throughput(server.port, body, ctype)
        after = server.rss_mb()
        torch_free = all(
            "torch" not in Path(f"/proc/{pid}/maps").read_text()
            for pid in server.worker_pids()
        )
    finally:
        server.stop()

    loaded_figures = load_figures(work, body, ctype)
    by_label = {p["label"]: p["probability"] for p in answer["probabilities"]}
    agree = max(
        abs(by_label[label] - p) for label, p in zip(LABELS, local_probs, strict=True)
    )
    http_median, local_median = statistics.median(http_ms), statistics.median(local_ms)
    rss = ", ".join(f"{pid}: {mb:.0f} MB" for pid, mb in after.items())
    return [
        Figure(
            name="predict median latency (gunicorn, 1 image)",
            value=http_median,
            baseline=local_median,
            unit="ms",
            better="lower",
            target_ratio=1.3,
            notes=(
                f"{N_LATENCY} sequential requests interleaved with the baseline, "
                f"{WORKERS} sync workers, load average {os.getloadavg()[0]:.1f}, "
                f"{ARCH} {SIZE}px, 1 ORT thread; baseline: in-process "
                f"decode+preprocess+ORT; probabilities agree within {agree:.1e}"
            ),
        ),
        Figure(
            name="predict p95 latency (gunicorn, 1 image)",
            value=percentile(http_ms, 0.95),
            baseline=percentile(local_ms, 0.95),
            unit="ms",
            better="lower",
            notes="same runs as the median",
        ),
        Figure(
            name="predict throughput, 8 concurrent clients",
            value=ok / seconds,
            baseline=1000 / local_median,
            unit="req/s",
            better="higher",
            notes=(
                f"{ok} answers and {errors} errors in {seconds:.1f} s; baseline: "
                "one in-process thread back to back"
            ),
        ),
        Figure(
            name="web worker resident memory with the model loaded",
            value=max(after.values()),
            baseline=max(idle.values()),
            unit="MB",
            better="lower",
            notes=(
                f"per worker after the load test: {rss}; after warm-up: "
                f"{', '.join(f'{mb:.0f}' for mb in loaded.values())} MB; baseline: "
                f"idle worker before any prediction; torch mapped: {not torch_free}"
            ),
        ),
        *loaded_figures,
    ]


def main() -> None:
    command, *args = sys.argv[1:]
    handlers = {"export": child_export, "install": child_install}
    print(json.dumps(handlers[command](*args)))


if __name__ == "__main__":
    main()
