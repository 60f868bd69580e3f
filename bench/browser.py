"""The upload page's "predict in my browser" mode in Chromium vs native ORT.

Same model (EfficientNet-Lite0 at 224 px, as in bench.predict) and the same
input tensor: the one the page builds. The page runs onnxruntime-web's WASM
backend with as many threads as cross-origin isolation allows it; the native
baseline (ONNX Runtime in Python) uses the same number of threads.

    python -m bench browser
"""

from __future__ import annotations

import base64
import os
import statistics
import time

import numpy as np

from bench import Figure
from bench.common import scratch
from bench.predict import IMAGE, Gunicorn, prepare

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WARMUP, BLOCKS, PER_BLOCK = 10, 8, 10

SETUP = """async ([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  window.benchFile = new File([bytes], name, { type: "image/jpeg" });
  const s = window.snapclass;
  await s.ensureSession();
  const prepared = await s.prepare(window.benchFile);
  return {
    backend: s.browser.backend,
    threads: s.browser.threads,
    isolated: self.crossOriginIsolated,
    input: Array.from(s.preprocess(prepared.pixels)),
  };
}"""

MEASURE = """async (runs) => {
  const out = [];
  for (let i = 0; i < runs; i++) {
    const r = await window.snapclass.predictBrowser(window.benchFile);
    out.push({ inference: r.timing.inference_ms, total: r.timing.total_ms,
               logits: r.logits });
  }
  return out;
}"""


BACK_TO_BACK = """async (runs) => {
  const s = window.snapclass;
  const size = s.config.model.image_size;
  const input = s.preprocess((await s.prepare(window.benchFile)).pixels);
  const feeds = { input: new ort.Tensor("float32", input, [1, 3, size, size]) };
  const times = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await s.browser.session.run(feeds);
    times.push(performance.now() - started);
  }
  return times;
}"""


def native_session(onnx_path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])


def timed(session, x: np.ndarray, runs: int) -> tuple[list[float], list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        (logits,) = session.run(["logits"], {"input": x})
        times.append((time.perf_counter() - started) * 1000)
    return times, logits[0].tolist()


def measure(url: str, onnx_path: str) -> dict:
    """Blocks of browser runs and native runs, alternated, on the same input."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on(
                "console",
                lambda m: errors.append(m.text) if m.type == "error" else None,
            )
            page.goto(url)
            page.wait_for_function("window.snapclass !== undefined")
            info = page.evaluate(
                SETUP, [base64.b64encode(IMAGE.read_bytes()).decode(), IMAGE.name]
            )
            x = np.asarray(info["input"], dtype=np.float32).reshape(1, 3, 224, 224)
            native = native_session(onnx_path, info["threads"])
            single = native_session(onnx_path, 1)
            page.evaluate(MEASURE, WARMUP)
            timed(native, x, WARMUP)
            timed(single, x, WARMUP)
            runs: dict[str, list] = {
                "browser": [],
                "back_to_back": [],
                "native": [],
                "single": [],
            }
            for _ in range(BLOCKS):
                runs["browser"] += page.evaluate(MEASURE, PER_BLOCK)
                runs["back_to_back"] += page.evaluate(BACK_TO_BACK, PER_BLOCK)
                runs["native"] += timed(native, x, PER_BLOCK)[0]
                runs["single"] += timed(single, x, PER_BLOCK)[0]
            _, logits = timed(native, x, 1)
            return {**info, **runs, "native_logits": logits, "errors": errors}
        finally:
            browser.close()


def run() -> list[Figure]:
    work = scratch("browser")
    # DEBUG: whitenoise serves the vendored onnxruntime-web from the finders.
    env, installed = prepare(work, DJANGO_DEBUG="true")
    server = Gunicorn(env, workers=1)
    try:
        m = measure(f"http://127.0.0.1:{server.port}/", installed["onnx"])
    finally:
        server.stop()
    if m["errors"]:
        raise RuntimeError(f"console errors: {m['errors']}")

    browser_logits = np.asarray(m["browser"][0]["logits"])
    diff = float(np.abs(browser_logits - np.asarray(m["native_logits"])).max())
    native = statistics.median(m["native"])
    threads = m["threads"]
    where = (
        f"{m['backend']}, {threads} thread(s), cross-origin isolated: {m['isolated']}"
    )
    runs = BLOCKS * PER_BLOCK
    return [
        Figure(
            name="browser mode inference median (onnxruntime-web)",
            value=statistics.median(r["inference"] for r in m["browser"]),
            baseline=native,
            unit="ms",
            better="lower",
            target_ratio=4.0,
            notes=(
                f"{where}; native ORT with {threads} thread(s) on the page's own "
                f"input tensor; {runs} runs each, alternated in blocks; load "
                f"average {os.getloadavg()[0]:.1f}; logits agree within {diff:.1e}; "
                f"native with 1 thread: {statistics.median(m['single']):.1f} ms"
            ),
        ),
        Figure(
            name="browser session.run back to back (a bare page's measure)",
            value=statistics.median(m["back_to_back"]),
            baseline=native,
            unit="ms",
            better="lower",
            target_ratio=4.0,
            notes=(
                "the page's session run in a tight loop, as the bare page of "
                "ONNX-IN-THE-BROWSER.md; in the page, preprocessing between runs "
                f"lets the worker threads go idle; baseline as above ({where})"
            ),
        ),
        Figure(
            name="browser mode total median (page preprocessing + inference)",
            value=statistics.median(r["total"] for r in m["browser"]),
            baseline=native,
            unit="ms",
            better="lower",
            notes=(
                "decode, shrink and Pillow-exact resize in JavaScript plus "
                f"inference, as the page times it; baseline as above ({where})"
            ),
        ),
    ]
