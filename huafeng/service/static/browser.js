// Stylize in the browser: an exported network (ONNX) run by onnxruntime-web (WebAssembly).
// The photo is read into a canvas and never sent anywhere; the only requests are for this page,
// the runtime and the model, all from this page's own origin.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const cfg = document.body.dataset;
  const status = (text, error = false) => { $("status").textContent = text; $("status").classList.toggle("error", error); };
  const sessions = new Map();   // model url (or local file name) -> InferenceSession
  let photo = null;             // ImageBitmap of the chosen photo
  let localModel = null;        // {name, bytes} of a chosen .onnx file

  ort.env.wasm.wasmPaths = new URL(cfg.vendor, location.href).href;
  ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation; one is enough for small nets
  ort.env.wasm.proxy = false;

  async function session(key, source) {
    if (!sessions.has(key)) {
      sessions.set(key, ort.InferenceSession.create(source, { executionProviders: ["wasm"], graphOptimizationLevel: "all" }));
    }
    const s = await sessions.get(key);
    if (s.inputNames.length !== 1) throw new Error("this page runs per-style networks and GAN generators (one image input)");
    return s;
  }

  function drawPhoto() {
    const limit = Number($("size").value);
    const scale = limit && Math.max(photo.width, photo.height) > limit ? limit / Math.max(photo.width, photo.height) : 1;
    const w = Math.max(1, Math.round(photo.width * scale)), h = Math.max(1, Math.round(photo.height * scale));
    const c = $("before");
    c.width = w; c.height = h;
    c.getContext("2d").drawImage(photo, 0, 0, w, h);
  }

  // RGBA bytes (H, W, 4) -> float32 (1, 3, H, W) in [0, 1]
  function toTensor(img) {
    const { width: w, height: h, data } = img, n = w * h, x = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      x[i] = data[4 * i] / 255; x[n + i] = data[4 * i + 1] / 255; x[2 * n + i] = data[4 * i + 2] / 255;
    }
    return new ort.Tensor("float32", x, [1, 3, h, w]);
  }

  function toImage(t, w, h) {
    const y = t.data, n = w * h, img = new ImageData(w, h);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) img.data[4 * i + c] = Math.round(Math.min(1, Math.max(0, y[c * n + i])) * 255);
      img.data[4 * i + 3] = 255;
    }
    return img;
  }

  async function stylize() {
    if (!photo) throw new Error("choose a photo first");
    const pick = $("model").value;
    const s = localModel && pick === "__local__" ? await session("local:" + localModel.name, localModel.bytes)
      : await session(pick, pick);
    drawPhoto();
    const before = $("before"), w = before.width, h = before.height;
    const input = toTensor(before.getContext("2d").getImageData(0, 0, w, h));
    const t0 = performance.now();
    const out = await s.run({ [s.inputNames[0]]: input });
    const ms = performance.now() - t0;
    const after = $("after");
    after.width = w; after.height = h;
    after.getContext("2d").putImageData(toImage(out[s.outputNames[0]], w, h), 0, 0);
    after.toBlob((blob) => { const a = $("download"); a.href = URL.createObjectURL(blob); a.hidden = false; }, "image/png");
    status(`done: ${w}×${h} in ${(ms / 1000).toFixed(2)} s, on this device`);
    return { width: w, height: h, ms };
  }

  async function loadModels() {
    const list = await (await fetch(cfg.models)).json();
    const sel = $("model");
    for (const m of list) sel.add(new Option(`${m.name} (${m.kind})`, new URL(m.url, location.href).href));
    status(list.length ? "choose a photo" : "no trained network is installed here; choose a local .onnx file");
  }

  function refresh() { $("go").disabled = !(photo && $("model").value); }

  $("photo").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try { photo = await createImageBitmap(f, { imageOrientation: "from-image" }); drawPhoto(); status("ready"); }
    catch (err) { photo = null; status(`cannot read ${f.name} as an image`, true); }
    refresh();
  });
  $("model-file").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    localModel = { name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) };
    const sel = $("model");
    [...sel.options].filter((o) => o.value === "__local__").forEach((o) => o.remove());
    sel.add(new Option(f.name + " (local file)", "__local__"));
    sel.value = "__local__";
    refresh();
  });
  $("model").addEventListener("change", refresh);
  $("size").addEventListener("change", () => photo && drawPhoto());
  $("go").addEventListener("click", async () => {
    $("go").disabled = true;
    status("running…");
    try { await stylize(); } catch (err) { status(String(err.message || err), true); }
    refresh();
  });

  const ready = loadModels().then(refresh, (err) => status(`cannot list the networks: ${err.message || err}`, true));
  window.huafeng = { ready, stylize };
})();
