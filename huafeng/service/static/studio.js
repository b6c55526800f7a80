// huafeng studio: plain JS, no CDN. Talks to the REST API of the same server.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { photo: null, style: null, styleFile: null, job: null, timer: null, history: [] };

function setStatus(text, error = false) { const s = $("status"); s.textContent = text; s.className = error ? "error" : ""; }
function isVideo(f) { return !!f && f.type.startsWith("video/"); }
function ready() {
  const gan = !!($("method").selectedOptions[0] || {}).dataset?.model;  // a GAN model needs no style
  $("go").disabled = !(state.photo && (state.style || state.styleFile || gan)) || !!state.job;
  $("train").disabled = !state.styleFile || !!state.job;
}

async function loadHealth() {
  try { const h = await (await fetch("/v1/health")).json(); $("health").textContent = `v${h.version} · queue ${h.queued}`; }
  catch { $("health").textContent = "server unreachable"; }
}

async function loadGallery() {
  const styles = await (await fetch("/v1/styles")).json();
  for (const s of styles) {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.style = s.name; b.title = `${s.artist}, ${s.title} (${s.year})`;
    b.setAttribute("role", "option"); b.setAttribute("aria-selected", "false");
    b.dataset.network = String(!!s.network);
    b.innerHTML = `<img src="${s.thumbnail}" alt="${s.name}"><span>${s.network ? "★ " : ""}${s.name}</span>`;
    if (s.network) b.title += " · has a trained network";
    b.onclick = () => selectStyle(s.name);
    $("gallery").appendChild(b);
  }
}

async function loadMethods() {
  // every method the server runs, from the server ("auto" first: the library's choice); GAN models one by one
  const methods = await (await fetch("/v1/methods")).json();
  const sel = $("method"); sel.textContent = "";
  for (const m of methods) {
    const o = document.createElement("option");
    o.value = m.model ? `${m.method}:${m.model}` : m.method;
    o.dataset.method = m.method; if (m.model) o.dataset.model = m.model;
    o.textContent = m.model ? `GAN model: ${m.model} (${m.note})` : `${m.method} (${m.note})`;
    sel.appendChild(o);
  }
}

function selectStyle(name) {
  state.style = name; state.styleFile = null; $("style-file").value = "";
  for (const b of $("gallery").children) b.setAttribute("aria-selected", String(b.dataset.style === name));
  ready();
}

function setPhoto(file) {
  if (!file) return;
  state.photo = file;
  const url = URL.createObjectURL(file);
  $("photo-preview").hidden = isVideo(file); $("video-preview").hidden = !isVideo(file);
  if (isVideo(file)) { $("video-preview").src = url; } else { $("photo-preview").src = url; $("before").src = url; }
  ready();
}

function form() {
  const f = new FormData();
  f.append(isVideo(state.photo) ? "video" : "content", state.photo);
  if (state.styleFile) f.append("style_file", state.styleFile); else if (state.style) f.append("style", state.style);
  const opt = $("method").selectedOptions[0];
  f.append("method", opt.dataset.method || opt.value);
  if (opt.dataset.model) f.append("model", opt.dataset.model);
  if (!isVideo(state.photo)) {
    f.append("strength", $("strength").value);
    f.append("preserve_color", $("color").value);
  }
  if ($("size").value) f.append("size", $("size").value);
  return f;
}

async function errorText(r) {
  try { return (await r.json()).error || r.statusText; } catch { return r.statusText; }
}

async function go() { return submit(isVideo(state.photo) ? "/v1/video-jobs" : "/v1/jobs", form()); }

async function train() {
  const f = new FormData();
  f.append("painting", state.styleFile);
  f.append("minutes", $("train-minutes").value);
  return submit("/v1/train-jobs", f);
}

async function submit(url, body) {
  setStatus("sending…"); $("progress").hidden = false; $("progress").value = 0;
  const r = await fetch(url, { method: "POST", body });
  if (!r.ok) {
    const retry = r.headers.get("Retry-After");
    setStatus(await errorText(r) + (retry ? ` (retry in ${retry} s)` : ""), true); $("progress").hidden = true; return;
  }
  state.job = (await r.json()).id; $("cancel").hidden = false; ready();
  state.lastKind = url.includes("video") ? "video" : url.includes("train") ? "train" : "image";
  state.timer = setInterval(poll, 400);
}

async function poll() {
  const r = await fetch(`/v1/jobs/${state.job}`);
  if (!r.ok) { finish(await errorText(r), true); return; }
  const j = await r.json();
  $("progress").value = j.progress;
  setStatus(`${j.status} ${Math.round(j.progress * 100)}% ${j.stage || ""}`);
  if (j.status === "done") { show(j.result); finish(`done in ${j.seconds} s (${j.method})`); }
  else if (j.status === "failed" || j.status === "cancelled") finish(j.error || j.status, j.status === "failed");
}

function finish(text, error = false) {
  clearInterval(state.timer); state.job = null; $("cancel").hidden = true; $("progress").hidden = true;
  setStatus(text, error); ready();
}

function show(url) {
  const a = $("download"); a.href = url; a.hidden = false;
  state.kind = state.lastKind;
  if (state.kind === "train") { a.textContent = "Download the trained network (.safetensors)"; return; }
  if (state.kind === "video") {
    $("compare").hidden = false; $("after").hidden = true; $("before-wrap").hidden = true; $("slider").hidden = true;
    $("after-video").hidden = false; $("after-video").src = url; a.textContent = "Download MP4"; return;
  }
  a.textContent = "Download PNG";
  $("after-video").hidden = true; $("after").hidden = false; $("before-wrap").hidden = false; $("slider").hidden = false;
  $("after").src = url; $("compare").hidden = false;
  $("after").onload = () => { $("before").style.width = $("after").clientWidth + "px"; };
  state.history.unshift(url);
  const h = document.createElement("img"); h.src = url; h.alt = "earlier result"; h.onclick = () => show(url);
  $("history").prepend(h);
}

async function cancel() {
  if (!state.job) return;
  await fetch(`/v1/jobs/${state.job}`, { method: "DELETE" });
}

$("photo").onchange = (e) => setPhoto(e.target.files[0]);
$("style-file").onchange = (e) => {
  state.styleFile = e.target.files[0] || null; state.style = null;
  for (const b of $("gallery").children) b.setAttribute("aria-selected", "false");
  ready();
};
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); setPhoto(e.dataTransfer.files[0]); };
$("strength").oninput = (e) => { $("strength-out").textContent = e.target.value; };
$("slider").oninput = (e) => { $("before-wrap").style.width = e.target.value + "%"; };
$("method").onchange = ready;
$("go").onclick = go;
$("train").onclick = train;
$("cancel").onclick = cancel;
loadHealth(); loadGallery(); loadMethods();
