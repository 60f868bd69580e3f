/* Snapclass upload page: shrink in the browser, then predict on the server or in
 * the browser with onnxruntime-web. The page works without this script (plain
 * form post); this adds drag and drop, paste, instant results and browser mode.
 *
 * Preprocessing in the browser mirrors the server exactly: the same shrunk pixels
 * go to both modes (uploaded losslessly as PNG), then Pillow's resampling
 * (ported below: same filters, same fixed-point arithmetic) caps the long side
 * like ingest and resizes like training's validation transform.
 */
(function () {
  "use strict";

  const configNode = document.getElementById("snapclass-config");
  const form = document.getElementById("predict-form");
  if (!configNode || !form) return;
  const config = JSON.parse(configNode.textContent);
  const model = config.model;

  const $ = (id) => document.getElementById(id);
  const ui = {
    form,
    drop: $("drop-zone"),
    file: $("image-input"),
    camera: $("camera-input"),
    chosen: $("chosen"),
    mode: $("mode"),
    button: $("predict-button"),
    status: $("status"),
    error: $("error"),
    result: $("result"),
    preview: $("preview"),
    topLabel: $("top-label"),
    topConfidence: $("top-confidence"),
    notSure: $("not-sure"),
    bars: $("bars"),
    version: $("model-version"),
    backend: $("backend"),
    timing: $("timing"),
  };

  class PredictError extends Error {
    constructor(code, detail) {
      super(detail || code);
      this.code = code;
      this.detail = detail || "";
    }
  }

  function errorText(err) {
    const code = err.code || "error";
    const words = config.errors[code] || err.detail || err.message || "Something went wrong";
    return `${words} (code ${code})`;
  }

  const R = window.snapclassResample;
  const newImage = R.newImage;
  const preprocess = (pixels) => R.preprocess(pixels, model, config.max_side);

  // --- Reading and shrinking the picture ------------------------------------------

  // Width and height from a PNG or JPEG header, to refuse pixel bombs before
  // the browser decodes them; null when unknown.
  async function sniffSize(file) {
    const head = new Uint8Array(await file.slice(0, 256 * 1024).arrayBuffer());
    const u16 = (i) => (head[i] << 8) | head[i + 1];
    const u32 = (i) => ((head[i] << 24) >>> 0) + (head[i + 1] << 16) + (head[i + 2] << 8) + head[i + 3];
    if (head.length > 24 && head[0] === 0x89 && head[1] === 0x50) return [u32(16), u32(20)];
    if (head.length > 4 && head[0] === 0xff && head[1] === 0xd8) {
      let i = 2;
      while (i + 9 < head.length && head[i] === 0xff) {
        const marker = head[i + 1];
        if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
          return [u16(i + 7), u16(i + 5)];
        }
        i += 2 + u16(i + 2);
      }
    }
    return null;
  }

  // Decode (EXIF orientation applied, transparency on white) and shrink so the
  // short side is the model's input size: what gets uploaded or run locally.
  async function prepare(file) {
    const size = await sniffSize(file);
    if (size && size[0] * size[1] > config.max_pixels) {
      throw new PredictError("too_large", "Image has too many pixels.");
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (e) {
      throw new PredictError("browser_decode", String(e));
    }
    const short = Math.min(bitmap.width, bitmap.height);
    if (short < config.min_side) {
      bitmap.close();
      throw new PredictError("too_small", "");
    }
    const target = Math.max(model.image_size, config.min_side);
    const k = short > target ? target / short : 1;
    const width = Math.max(1, Math.round(bitmap.width * k));
    const height = Math.max(1, Math.round(bitmap.height * k));
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
    const rgba = ctx.getImageData(0, 0, width, height).data;
    const pixels = newImage(width, height);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      pixels.data[j] = rgba[i];
      pixels.data[j + 1] = rgba[i + 1];
      pixels.data[j + 2] = rgba[i + 2];
    }
    return { canvas, pixels };
  }

  function canvasBlob(canvas) {
    return new Promise((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("toBlob failed"))), "image/png")
    );
  }

  // --- Predicting ------------------------------------------------------------------

  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // POST a form to the API; its JSON answer, or a PredictError with its code.
  async function postForm(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        body,
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
        credentials: "same-origin",
      });
    } catch (e) {
      throw new PredictError("network", String(e));
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new PredictError((data && data.code) || `http_${response.status}`, data && data.detail);
    }
    return data;
  }

  async function predictServer(file) {
    const started = performance.now();
    let upload = file;
    let name = file.name || "upload";
    let preview = null;
    try {
      const prepared = await prepare(file);
      upload = await canvasBlob(prepared.canvas);
      name = "image.png";
      preview = prepared.canvas;
    } catch (e) {
      // Send what the browser cannot read as it is: the server says why, in the
      // same words and codes as for every other client.
    }
    const body = new FormData();
    body.append("image", upload, name);
    const data = await postForm(config.predict_url, body);
    return {
      ...data,
      backend: "server",
      timing: { total_ms: performance.now() - started },
      preview,
      // What feedback sends back if the answer was wrong: what the model saw.
      feedbackImage: () => Promise.resolve({ blob: upload, name }),
    };
  }

  const browser = { session: null, loading: null, backend: null, threads: 1 };

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new PredictError("browser_unavailable", `cannot load ${src}`));
      document.head.appendChild(script);
    });
  }

  async function sha256Hex(bytes) {
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function webgpuAvailable() {
    if (!config.ort.all || !("gpu" in navigator)) return false;
    try {
      return Boolean(await navigator.gpu.requestAdapter());
    } catch (e) {
      return false;
    }
  }

  // Where ORT finds its WebAssembly glue (.mjs) and binary (.wasm). With threads,
  // the glue also starts the worker threads, and a worker script needs its own
  // COEP header under this page's policy; a blob: copy inherits the page's
  // instead, so any static file server will do.
  async function runtimePaths(webgpu, threaded) {
    const name = webgpu ? "ort-wasm-simd-threaded.jsep" : "ort-wasm-simd-threaded";
    const base = new URL(config.ort.base, location.href);
    const mjs = new URL(`${name}.mjs`, base).href;
    const wasm = new URL(`${name}.wasm`, base).href;
    if (!threaded) return { mjs, wasm };
    const response = await fetch(mjs, { credentials: "same-origin" });
    if (!response.ok) throw new PredictError("browser_unavailable", `cannot load ${mjs}`);
    const code = new Blob([await response.text()], { type: "text/javascript" });
    return { mjs: URL.createObjectURL(code), wasm };
  }

  async function createSession() {
    if (!config.ort.wasm) {
      throw new PredictError("browser_unavailable", "onnxruntime-web is not installed on this server");
    }
    const webgpu = await webgpuAvailable();
    await loadScript(webgpu ? config.ort.all : config.ort.wasm);
    const ort = window.ort;
    // Threads need SharedArrayBuffer, which needs this page's COOP/COEP headers.
    browser.threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    ort.env.wasm.numThreads = browser.threads;
    ort.env.wasm.wasmPaths = await runtimePaths(webgpu, browser.threads > 1);
    const response = await fetch(model.onnx_url, { credentials: "same-origin" });
    if (!response.ok) throw new PredictError("model_unavailable", `model download: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (self.crypto && crypto.subtle && (await sha256Hex(bytes)) !== model.onnx_sha256) {
      throw new PredictError("artifact_mismatch", "The model file does not match its recorded sha256.");
    }
    const options = { graphOptimizationLevel: "all", freeDimensionOverrides: { batch: 1 } };
    if (webgpu) {
      try {
        browser.session = await ort.InferenceSession.create(bytes, { ...options, executionProviders: ["webgpu"] });
        browser.backend = "webgpu";
        return;
      } catch (e) {
        // Fall through to WebAssembly.
      }
    }
    browser.session = await ort.InferenceSession.create(bytes, { ...options, executionProviders: ["wasm"] });
    browser.backend = "wasm";
  }

  function ensureSession() {
    if (!browser.loading) {
      browser.loading = createSession().catch((e) => {
        browser.loading = null;
        throw e;
      });
    }
    return browser.loading;
  }

  // Calibrated probabilities, as the server computes them: softmax(logits / T).
  function softmax(logits, temperature) {
    const scaled = logits.map((v) => v / (temperature || 1));
    const max = Math.max(...scaled);
    const exps = scaled.map((v) => Math.exp(v - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    return exps.map((v) => v / sum);
  }

  async function predictBrowser(file, prepared) {
    const started = performance.now();
    await ensureSession();
    const loaded = performance.now();
    prepared = prepared || (await prepare(file));
    const input = preprocess(prepared.pixels);
    const preprocessed = performance.now();
    const ort = window.ort;
    const size = model.image_size;
    const tensor = new ort.Tensor("float32", input, [1, 3, size, size]);
    const outputs = await browser.session.run({ [model.input_name || "input"]: tensor });
    const finished = performance.now();
    const logits = Array.from(outputs[model.output_name || "logits"].data);
    const probs = softmax(logits, model.temperature);
    const ranked = model.label_names
      .map((label, i) => ({ label, probability: probs[i] }))
      .sort((a, b) => b.probability - a.probability);
    const threshold = model.uncertain_below;
    return {
      label: ranked[0].label,
      confidence: ranked[0].probability,
      uncertain: threshold !== null && threshold !== undefined && ranked[0].probability < threshold,
      probabilities: ranked,
      model_version: model.version,
      logits,
      backend: browser.backend,
      threads: browser.threads,
      timing: {
        load_ms: loaded - started,
        preprocess_ms: preprocessed - loaded,
        inference_ms: finished - preprocessed,
        total_ms: finished - loaded,
      },
      preview: prepared.canvas,
      // Nothing leaves the browser unless the user corrects the answer.
      feedbackImage: async () => ({ blob: await canvasBlob(prepared.canvas), name: "image.png" }),
    };
  }

  // --- "Wrong? It is ...": feedback on the answer shown ----------------------------

  const feedbackForm = $("feedback-form");
  const feedbackStatus = $("feedback-status");
  let answered = null; // the result the feedback buttons are about

  function feedbackReset(result) {
    answered = result;
    if (!feedbackForm) return;
    delete feedbackForm.dataset.state;
    feedbackStatus.textContent = "";
    feedbackForm.querySelectorAll("button[name=label]").forEach((button) => {
      button.hidden = Boolean(button.value) && button.dataset.label === result.label;
      button.disabled = false;
    });
    const typed = $("new-label");
    if (typed) typed.value = "";
  }

  async function sendFeedback(label, labelName, newLabel) {
    const result = answered;
    const { blob, name } = await result.feedbackImage();
    const body = new FormData();
    body.append("image", blob, name);
    body.append("label", label);
    if (newLabel) body.append("new_label", newLabel);
    body.append("predicted_label", result.label);
    body.append("model_version", String(result.model_version));
    if (result.prediction_id) body.append("prediction", String(result.prediction_id));
    await postForm(config.feedback_url, body);
    return `Thank you: the image was sent for review as \u201c${labelName}\u201d.`;
  }

  if (feedbackForm) {
    feedbackForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = event.submitter;
      if (!answered || !button || button.name !== "label") return;
      const buttons = feedbackForm.querySelectorAll("button[name=label]");
      buttons.forEach((b) => (b.disabled = true));
      feedbackForm.dataset.state = "busy";
      feedbackStatus.textContent = "Sending…";
      // "... another class": the name typed beside the button.
      const newLabel = button.value ? "" : $("new-label").value.trim();
      try {
        feedbackStatus.textContent = await sendFeedback(
          button.value,
          button.value ? button.dataset.label : newLabel,
          newLabel
        );
        feedbackForm.dataset.state = "sent";
      } catch (e) {
        if (!(e instanceof PredictError)) console.warn(e);
        feedbackStatus.textContent = errorText(e);
        feedbackForm.dataset.state = "error";
        buttons.forEach((b) => (b.disabled = false));
      }
    });
  }

  // --- The page --------------------------------------------------------------------

  let current = null;

  function mode() {
    const checked = form.querySelector("input[name=mode]:checked");
    return checked ? checked.value : "server";
  }

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = !message;
  }

  function showResult(result) {
    ui.topLabel.textContent = result.label;
    ui.topConfidence.textContent = (100 * result.confidence).toFixed(0);
    if (ui.notSure) ui.notSure.hidden = !result.uncertain;
    ui.result.dataset.uncertain = result.uncertain ? "true" : "false";
    ui.bars.replaceChildren(
      ...result.probabilities.map(({ label, probability }) => {
        const li = document.createElement("li");
        li.dataset.label = label;
        li.dataset.probability = probability.toFixed(6);
        const name = document.createElement("span");
        name.className = "bar-label";
        name.textContent = label;
        const bar = document.createElement("span");
        bar.className = "bar";
        const fill = document.createElement("span");
        fill.style.width = `${(100 * probability).toFixed(1)}%`;
        bar.append(fill);
        const value = document.createElement("span");
        value.className = "bar-value";
        value.textContent = probability.toFixed(3);
        li.append(name, bar, value);
        return li;
      })
    );
    ui.version.textContent = result.model_version;
    if (result.backend === "server") {
      ui.backend.textContent = "server";
      ui.timing.textContent = `· ${result.timing.total_ms.toFixed(0)} ms round trip`;
    } else {
      const threads = result.backend === "wasm" ? `, ${result.threads} thread${result.threads > 1 ? "s" : ""}` : "";
      ui.backend.textContent = `in your browser (${result.backend}${threads})`;
      ui.timing.textContent =
        `· ${result.timing.total_ms.toFixed(0)} ms ` +
        `(inference ${result.timing.inference_ms.toFixed(1)} ms, preprocessing ` +
        `${result.timing.preprocess_ms.toFixed(1)} ms)`;
    }
    ui.result.hidden = false;
  }

  // The picture as chosen (the browser could decode it: a result came back).
  function showPreview(file) {
    if (ui.preview.dataset.objectUrl) URL.revokeObjectURL(ui.preview.dataset.objectUrl);
    const url = URL.createObjectURL(file);
    ui.preview.dataset.objectUrl = url;
    ui.preview.src = url;
  }

  async function run() {
    if (!current) {
      showError(errorText({ code: "missing_image" }));
      return;
    }
    const file = current;
    const where = mode();
    showError("");
    ui.button.disabled = true;
    ui.status.textContent = where === "browser" && !browser.session ? "Loading the model…" : "Predicting…";
    form.dataset.state = "busy";
    try {
      const result = where === "browser" ? await predictBrowser(file) : await predictServer(file);
      if (file !== current) return; // a newer pick replaced this one
      if (result.preview) showPreview(file);
      else ui.preview.removeAttribute("src");
      showResult(result);
      feedbackReset(result);
      form.dataset.state = "done";
    } catch (e) {
      if (!(e instanceof PredictError)) console.warn(e);
      ui.result.hidden = true;
      showError(errorText(e));
      form.dataset.state = "error";
    } finally {
      ui.button.disabled = false;
      ui.status.textContent = "";
    }
  }

  function choose(file) {
    if (!file) return;
    current = file;
    ui.chosen.textContent = file.name ? `Chosen: ${file.name}` : "Image pasted";
    run();
  }

  form.classList.add("enhanced");
  ui.mode.hidden = !model || !config.ort.wasm;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  for (const input of [ui.file, ui.camera]) {
    input.addEventListener("change", () => choose(input.files[0]));
  }
  form.querySelectorAll("input[name=mode]").forEach((radio) =>
    radio.addEventListener("change", () => current && run())
  );
  ui.drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    ui.drop.classList.add("dragging");
  });
  ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("dragging"));
  ui.drop.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.drop.classList.remove("dragging");
    choose(event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const item = Array.from(event.clipboardData ? event.clipboardData.items : []).find(
      (i) => i.kind === "file" && i.type.startsWith("image/")
    );
    if (item) choose(item.getAsFile());
  });

  // For tests and benchmarks: the same code paths the page uses.
  window.snapclass = {
    config,
    predictServer,
    predictBrowser,
    prepare,
    preprocess,
    ensureSession,
    browser,
    lastResult: () => answered,
  };
})();
