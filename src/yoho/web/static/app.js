/* The page's workflow: open an image, annotate (editor.js), save, segment with live progress,
 * show and download the result. Talks only to this server's /api (same origin). */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const TERMINAL = new Set(["done", "failed", "cancelled"]);
  const TOOL_HELP = {
    roi: "Click around the lesion, leaving a margin, to add ROI points; click the first point (or press Enter) to close it.",
    lesion: "Click on lesion tissue to place a circle; press and drag to set its size. Drag a circle to move it.",
    normal: "Click on normal tissue to place a circle; press and drag to set its size. Optional, but it helps.",
    fixLesion: "Correction: click (or press and drag) where the outline missed lesion, then press Refine. Dashed circles are this round's corrections, dotted ones earlier rounds'.",
    fixNormal: "Correction: click (or press and drag) on normal tissue the outline took in, then press Refine.",
  };

  const app = {
    config: null,
    image: null, // {id, name, width, height, ...}
    dirty: false,
    job: null,
    events: null,
    resultJob: null, // the segmentation whose result is shown (correction rounds refine it)
    rounds: null, // its rounds: GET .../jobs/{id}/rounds
    refineClock: null,
  };

  const editor = new window.YohoEditor($("editor"), onEditorChange);
  window.yohoEditor = editor; // read by the browser tests (coordinates), and handy in devtools

  // ---- small helpers ---------------------------------------------------------------------

  function status(text, kind) {
    const el = $("status");
    el.textContent = text;
    el.dataset.kind = kind || "info";
  }

  async function api(method, url, body, headers) {
    const options = { method, headers: headers || {} };
    if (body !== undefined) {
      if (body instanceof Blob) {
        options.body = body;
      } else {
        options.body = JSON.stringify(body);
        options.headers["Content-Type"] = "application/json";
      }
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      throw new Error("the YOHO server does not answer (is `yoho serve` still running?)");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error ? data.error : `${response.status} ${response.statusText}`;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // care.js (delete, preview, export links) uses the page's server calls, status and links.
  window.yohoPage = { api, status, setLink };

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error(`could not load ${url}`));
      img.src = url;
    });
  }

  function setLink(id, url) {
    const a = $(id);
    if (url) {
      a.href = url;
      a.setAttribute("download", "");
      a.classList.remove("disabled");
      a.removeAttribute("aria-disabled");
    } else {
      a.removeAttribute("href");
      a.classList.add("disabled");
      a.setAttribute("aria-disabled", "true");
    }
  }

  const imageUrl = (path) => `/api/images/${app.image.id}${path}`;

  // ---- editor feedback --------------------------------------------------------------------

  function onEditorChange(what) {
    if (["edit", "vertex", "close", "clear", "delete", "radius", "circle", "complement", "undo",
         "redo", "drag-end", "draft"].includes(what)) {
      app.dirty = true;
    }
    if (what === "roi-closed-hint") {
      status("The ROI is closed: drag its points to change it, Clear ROI to redraw it, or Shift+click to add another polygon.", "info");
    }
    if (what === "close") status("ROI closed. Now mark the lesion with one or more circles (L).", "ok");
    refreshControls();
  }

  function refreshControls() {
    const st = editor.state;
    const has = Boolean(app.image);
    $("counts").textContent = has
      ? `ROI: ${st.polygons.length ? `${st.polygons.length} polygon(s), ${st.polygons.reduce((n, p) => n + p.length, 0)} points` : "none"}` +
        (st.draft ? ` (drawing: ${st.draft.length} points)` : "") +
        (st.holes.length ? `, ${st.holes.length} hole(s)` : "") +
        ` · lesion circles: ${st.lesion.length} · normal circles: ${st.normal.length}`
      : "";
    $("complement").checked = st.complement;
    $("undo").disabled = !editor.undoStack.length;
    $("redo").disabled = !editor.redoStack.length;
    $("close-roi").disabled = !(st.draft && st.draft.length >= 3);
    $("clear-roi").disabled = !(st.polygons.length || st.draft);
    $("delete-selected").disabled = !editor.selection;
    const running = app.job && !TERMINAL.has(app.job.state);
    $("save").disabled = !has;
    $("segment").disabled = !has || running;
    $("cancel").disabled = !running;
    $("save-state").textContent = !has ? "" : app.dirty ? "Unsaved changes." : app.image.has_annotation ? "Saved." : "Not saved yet.";
    document.querySelectorAll(".tool").forEach((b) =>
      b.setAttribute("aria-checked", String(b.dataset.tool === editor.tool)),
    );
    $("tool-help").textContent = TOOL_HELP[editor.tool];
    refreshRefineControls();
  }

  function setTool(tool) {
    editor.setTool(tool);
    refreshControls();
  }

  // ---- opening images ---------------------------------------------------------------------

  async function openImage(info) {
    if (app.dirty && app.image && !window.confirm("Discard the unsaved changes to this annotation?")) return;
    closeEvents();
    app.image = info;
    app.job = null;
    app.resultJob = null;
    app.rounds = null;
    app.dirty = false;
    status(`Loading ${info.name}…`, "busy");
    const img = await loadImage(imageUrl(`/image`));
    editor.setImage(img, info.width, info.height);
    $("stage-hint").hidden = true;
    $("image-name").textContent = `${info.name} — ${info.width}×${info.height} px`;
    $("result-panel").hidden = true;
    $("progress").value = 0;
    $("progress-text").textContent = "";
    setLink("download-annotation", null);
    history.replaceState(null, "", `#image=${info.id}`);
    let message = `Opened ${info.name}. Draw the ROI polygon around the lesion (R).`;
    if (info.has_annotation) {
      const data = await api("GET", imageUrl("/annotation"));
      editor.loadAnnotation(data);
      if (data.annotator) $("annotator").value = data.annotator;
      setLink("download-annotation", imageUrl("/annotation?download=true"));
      message = `Opened ${info.name} with its saved annotation.`;
      setTool(editor.state.lesion.length ? "lesion" : "roi");
    } else {
      setTool("roi");
    }
    app.dirty = false;
    const jobs = info.jobs || [];
    const last = jobs.find((j) => j.state === "done");
    const active = jobs.find((j) => !TERMINAL.has(j.state));
    if (active) {
      watchJob(active);
      message += " A segmentation is under way.";
    } else if (last) {
      await showResult(last);
      message += " Its last result is shown.";
    }
    status(message, "ok");
    refreshControls();
    refreshRecent();
  }

  // An annotation file from disk (a result's lesion_annotation.json, a colleague's annotation):
  // loaded into the editor to be checked and edited; saved only when the user saves it.
  async function openAnnotationFile(file) {
    if (!file) return;
    if (!app.image) {
      status("Open the image first, then its annotation file.", "error");
      return;
    }
    let data;
    try {
      data = JSON.parse(await file.text());
    } catch (err) {
      status(`${file.name}: not a JSON annotation (${err.message}).`, "error");
      return;
    }
    const size = data && data.image_size;
    if (!size || size.width !== app.image.width || size.height !== app.image.height) {
      const made = size ? `${size.width}×${size.height}` : "an unknown size";
      status(`${file.name} is for an image of ${made}; this one is ${app.image.width}×${app.image.height}.`, "error");
      return;
    }
    editor.loadAnnotation(data);
    if (data.annotator) $("annotator").value = data.annotator;
    app.dirty = true;
    status(`Loaded ${file.name}: check the ROI and circles, edit them if needed, then Save annotation.`, "ok");
    refreshControls();
  }

  async function upload(file) {
    if (!file) return;
    if (app.config && file.size > app.config.max_upload_bytes) {
      status(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${(app.config.max_upload_bytes / 1048576).toFixed(0)} MB.`, "error");
      return;
    }
    status(`Uploading ${file.name}…`, "busy");
    try {
      const type = file.type && file.type.startsWith("image/") ? file.type : "application/octet-stream";
      const info = await api("POST", `/api/images?filename=${encodeURIComponent(file.name)}`, file, { "Content-Type": type });
      await openImage(info);
    } catch (err) {
      status(`Upload failed: ${err.message}`, "error");
    }
  }

  async function refreshRecent() {
    try {
      const { images } = await api("GET", "/api/images");
      const select = $("recent-select");
      select.replaceChildren(
        ...images.map((im) => new Option(`${im.name} (${im.width}×${im.height})${im.has_annotation ? " ✓" : ""}`, im.id)),
      );
      $("recent-picker").hidden = images.length === 0;
    } catch (err) {
      /* the list is a convenience; the status line keeps the more important message */
    }
  }

  async function refreshData() {
    if (!app.config.data) return;
    const { images } = await api("GET", "/api/data");
    $("data-select").replaceChildren(...images.map((im) => new Option(im.path, im.path)));
    $("data-picker").hidden = images.length === 0;
  }

  // ---- saving -------------------------------------------------------------------------------

  async function save() {
    if (!app.image) return false;
    const problems = editor.problems();
    if (problems.length) {
      status(`Cannot save yet: ${problems.join("; ")}.`, "error");
      return false;
    }
    const annotator = $("annotator").value.trim();
    localStorage.setItem("yoho-annotator", annotator);
    try {
      await api("PUT", imageUrl("/annotation"), editor.toAnnotation(annotator));
    } catch (err) {
      status(`Not saved: ${err.message}`, "error");
      return false;
    }
    app.dirty = false;
    app.image.has_annotation = true;
    setLink("download-annotation", imageUrl("/annotation?download=true"));
    status("Annotation saved. Press Segment to train on this image.", "ok");
    refreshControls();
    return true;
  }

  // ---- segmentation jobs --------------------------------------------------------------------

  async function segment() {
    if (!app.image) return;
    if ((app.dirty || !app.image.has_annotation) && !(await save())) return;
    try {
      const job = await api("POST", imageUrl("/jobs"), { profile: $("profile").value });
      watchJob(job);
    } catch (err) {
      status(`Segmentation not started: ${err.message}`, "error");
    }
  }

  function closeEvents() {
    if (app.events) app.events.close();
    app.events = null;
  }

  function watchJob(job) {
    closeEvents();
    showProgress(job);
    const source = new EventSource(imageUrl(`/jobs/${job.id}/events`));
    app.events = source;
    source.addEventListener("job", (event) => {
      const snap = JSON.parse(event.data);
      if (!app.image || snap.image_id !== app.image.id) return;
      showProgress(snap);
      if (TERMINAL.has(snap.state)) {
        source.close();
        if (app.events === source) app.events = null;
        finished(snap);
      }
    });
    source.onerror = () => {
      // EventSource reconnects by itself and then gets the job's current state again.
      if (app.events === source && app.job && !TERMINAL.has(app.job.state)) {
        status("Lost contact with the server while the job runs; retrying…", "error");
      }
    };
  }

  function showProgress(snap) {
    if (snap.kind === "refine") return showRefineProgress(snap);
    app.job = snap;
    const bar = $("progress");
    bar.max = Math.max(1, snap.total || 1);
    bar.value = snap.step || 0;
    let text;
    if (snap.state === "queued") {
      text = snap.position > 0 ? `Queued: ${snap.position} job(s) ahead.` : "Queued: starting…";
    } else if (snap.state === "running") {
      text = snap.step
        ? `Training step ${snap.step} of ${snap.total} · loss ${Number(snap.loss).toFixed(4)}`
        : "Preparing the training images…";
      if (snap.cancel_requested) text += " · stopping…";
    } else if (snap.state === "done") {
      text = `Finished: ${snap.step} of ${snap.total} steps, final loss ${Number(snap.loss).toFixed(4)}.`;
    } else if (snap.state === "cancelled") {
      text = `Cancelled after ${snap.step} of ${snap.total} steps.`;
    } else {
      text = "Failed (see the status line).";
    }
    $("progress-text").textContent = text;
    if (!TERMINAL.has(snap.state)) status(`Segmenting with profile “${snap.profile}” — ${text}`, "busy");
    refreshControls();
  }

  async function finished(snap) {
    if (snap.kind === "refine") return refineFinished(snap);
    if (snap.state === "done") {
      try {
        await showResult(snap);
      } catch (err) {
        status(`Segmentation finished, but its result could not be shown: ${err.message}`, "error");
        return;
      }
      status("Segmentation finished. Compare the green outline with the lesion; adjust and segment again if needed.", "ok");
    } else if (snap.state === "cancelled") {
      status("Segmentation cancelled.", "info");
    } else {
      status(`Segmentation failed: ${snap.error || "unknown error"}. The server keeps running; you can try again.`, "error");
    }
    refreshControls();
  }

  async function cancel() {
    if (!app.job || TERMINAL.has(app.job.state)) return;
    try {
      showProgress(await api("POST", imageUrl(`/jobs/${app.job.id}/cancel`)));
    } catch (err) {
      status(`Could not cancel: ${err.message}`, "error");
    }
  }

  // The leak check (cpu_guided): the mask is GrabCut's from the circles alone when the walk
  // spread past the lesion; the physician should know which of the two they are looking at.
  function leakNote(s) {
    const c = s && s.leak_check;
    if (!c || !c.fired) return "";
    return c.complement
      ? " · mask from GrabCut on the circles (the ROI marks normal tissue)"
      : ` · mask from GrabCut on the circles (the walk spread to ${c.area_ratio.toFixed(1)}× its area)`;
  }

  async function showResult(job) {
    const files = (name, download) => imageUrl(`/jobs/${job.id}/files/${name}${download ? "?download=true" : ""}`);
    const layer = await loadImage(`${files("contour.png")}?v=${Date.now()}`); // a new round, same URL
    editor.setResult(layer);
    setLink("download-mask", files("mask.png", true));
    setLink("download-overlay", files("overlay.png", true));
    setLink("download-job-annotation", files("annotation.json", true));
    setLink("download-summary", files("summary.json", true));
    const s = job.summary || {};
    const seconds = s.timings_s ? `${s.timings_s.total.toFixed(1)} s` : "";
    $("result-summary").textContent =
      `Lesion: ${s.area_fraction !== undefined ? (100 * s.area_fraction).toFixed(1) : "?"} % of the image` +
      ` · profile ${job.profile} · ${s.steps || job.total} steps${seconds ? ` · ${seconds}` : ""}` +
      ` · finished ${job.finished ? new Date(job.finished).toLocaleTimeString() : ""}` +
      leakNote(s);
    $("result-panel").hidden = false;
    $("editor").dataset.result = job.id;
    app.job = job;
    await showRounds(job);
  }

  // ---- correction rounds: circles on the result, Refine, Undo round -------------------------

  function refineReady() {
    return Boolean(app.image && app.resultJob && app.rounds && app.rounds.refinable);
  }

  function jobRunning() {
    return Boolean(app.job && !TERMINAL.has(app.job.state));
  }

  async function showRounds(job) {
    app.resultJob = job;
    try {
      app.rounds = await api("GET", imageUrl(`/jobs/${job.id}/rounds`));
    } catch (err) {
      app.rounds = null;
    }
    const rounds = app.rounds;
    editor.setPastCorrections(rounds ? rounds.corrections : []);
    if (!refineReady() && editor.isCorrectionTool()) setTool("lesion");
    if (rounds && rounds.round > 0) {
      const s = rounds.summary || {};
      const seconds = s.timings_s ? ` · ${s.timings_s.total.toFixed(1)} s` : "";
      $("result-summary").textContent =
        `Lesion: ${s.area_fraction !== undefined ? (100 * s.area_fraction).toFixed(1) : "?"} % of the image` +
        ` · profile ${job.profile} · round ${rounds.round} (${s.clicks || 0} correction circles)${seconds}` +
        leakNote(s);
    }
    if (rounds && rounds.refine && !jobRunning()) watchJob(rounds.refine);
    refreshControls();
  }

  function refreshRefineControls() {
    const ready = refineReady();
    const running = jobRunning();
    const fixes = editor.corrections();
    const count = fixes.lesion_circles.length + fixes.normal_circles.length;
    $("tool-fix-lesion").disabled = !ready;
    $("tool-fix-normal").disabled = !ready;
    $("refine").disabled = !ready || running || count === 0;
    $("undo-round").disabled = !ready || running || !app.rounds.can_undo;
    $("clear-corrections").disabled = count === 0;
    const rounds = app.rounds;
    $("refine-box").dataset.round = rounds ? String(rounds.round) : "";
    let text = "";
    if (rounds && !rounds.refinable) {
      text = "This result kept no network (it was made before correction rounds existed): segment again to correct it.";
    } else if (rounds) {
      const earlier = (rounds.corrections || []).reduce(
        (n, r) => n + (r.lesion_circles || []).length + (r.normal_circles || []).length, 0);
      text = rounds.round === 0 ? "Round 0 (the first segmentation)."
        : `Round ${rounds.round}: ${earlier} correction circle(s) applied; earlier rounds are kept.`;
      text += count
        ? ` ${count} new correction(s): press Refine.`
        : " Where the outline is wrong, place + Lesion or − Normal circles, then press Refine.";
    }
    $("round-info").textContent = text;
  }

  async function refine() {
    if (!refineReady() || jobRunning()) return;
    const fixes = editor.corrections();
    if (!fixes.lesion_circles.length && !fixes.normal_circles.length) {
      status("Place a correction circle (+ Lesion or − Normal) on the result first.", "error");
      return;
    }
    try {
      const job = await api("POST", imageUrl(`/jobs/${app.resultJob.id}/refine`), fixes);
      app.refineClock = performance.now();
      watchJob(job);
    } catch (err) {
      status(`Refine not started: ${err.message}`, "error");
    }
  }

  function showRefineProgress(snap) {
    app.job = snap;
    const bar = $("progress");
    bar.max = Math.max(1, snap.total || 1);
    bar.value = snap.step || 0;
    let text;
    if (snap.state === "queued") {
      text = snap.position > 0 ? `Round ${snap.round} queued: ${snap.position} job(s) ahead.` : `Round ${snap.round} queued: starting…`;
    } else if (snap.state === "running") {
      text = snap.step
        ? `Refining round ${snap.round}: step ${snap.step} of ${snap.total} · loss ${Number(snap.loss).toFixed(4)}`
        : `Refining round ${snap.round}: loading the network…`;
      if (snap.cancel_requested) text += " · stopping…";
    } else if (snap.state === "done") {
      text = `Round ${snap.round} finished: ${snap.step} of ${snap.total} steps, final loss ${Number(snap.loss).toFixed(4)}.`;
    } else if (snap.state === "cancelled") {
      text = `Round ${snap.round} cancelled.`;
    } else {
      text = "Refine failed (see the status line).";
    }
    $("progress-text").textContent = text;
    if (!TERMINAL.has(snap.state)) status(text, "busy");
    refreshControls();
  }

  async function refineFinished(snap) {
    const clock = app.refineClock;
    app.refineClock = null;
    if (snap.state === "done") {
      editor.clearCorrections();
      try {
        await showResult(app.resultJob);
      } catch (err) {
        status(`Round ${snap.round} finished, but it could not be shown: ${err.message}`, "error");
        return;
      }
      const seconds = clock === null ? "" : ` in ${((performance.now() - clock) / 1000).toFixed(1)} s`;
      status(`Round ${snap.round} done${seconds}: the outline follows the corrections (dotted circles). Correct again, or Undo round.`, "ok");
    } else if (snap.state === "cancelled") {
      status("Refine cancelled: the result is as it was, and the corrections are still in place.", "info");
    } else {
      status(`Refine failed: ${snap.error || "unknown error"}. The result is as it was; you can try again.`, "error");
    }
    refreshControls();
  }

  async function undoRound() {
    if (!refineReady() || jobRunning()) return;
    let rounds;
    try {
      rounds = await api("POST", imageUrl(`/jobs/${app.resultJob.id}/undo`));
    } catch (err) {
      status(`Could not undo the round: ${err.message}`, "error");
      return;
    }
    try {
      await showResult(app.resultJob);
    } catch (err) {
      status(`Back at round ${rounds.round}, but it could not be shown: ${err.message}`, "error");
      return;
    }
    status(`Back at round ${rounds.round}${rounds.round === 0 ? " (the first segmentation)" : ""}.`, "ok");
  }

  function wireRefine() {
    $("refine").addEventListener("click", refine);
    $("undo-round").addEventListener("click", undoRound);
    $("clear-corrections").addEventListener("click", () => editor.clearCorrections());
  }

  // ---- wiring -------------------------------------------------------------------------------

  function wire() {
    $("file-input").addEventListener("change", (e) => {
      upload(e.target.files[0]);
      e.target.value = "";
    });
    $("annotation-input").addEventListener("change", (e) => {
      openAnnotationFile(e.target.files[0]);
      e.target.value = "";
    });
    const stage = $("stage");
    stage.addEventListener("dragover", (e) => {
      e.preventDefault();
      stage.classList.add("dragover");
    });
    stage.addEventListener("dragleave", () => stage.classList.remove("dragover"));
    stage.addEventListener("drop", (e) => {
      e.preventDefault();
      stage.classList.remove("dragover");
      if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
    });
    $("data-open").addEventListener("click", async () => {
      const path = $("data-select").value;
      if (!path) return;
      status(`Opening ${path}…`, "busy");
      try {
        await openImage(await api("POST", "/api/data/open", { path }));
      } catch (err) {
        status(`Could not open ${path}: ${err.message}`, "error");
      }
    });
    $("recent-open").addEventListener("click", async () => {
      const id = $("recent-select").value;
      if (!id) return;
      try {
        await openImage(await api("GET", `/api/images/${id}`));
      } catch (err) {
        status(`Could not reopen the image: ${err.message}`, "error");
      }
    });
    document.querySelectorAll(".tool").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
    $("close-roi").addEventListener("click", () => editor.closeRoi());
    $("clear-roi").addEventListener("click", () => editor.clearRoi());
    $("delete-selected").addEventListener("click", () => editor.deleteSelected());
    $("undo").addEventListener("click", () => editor.undo());
    $("redo").addEventListener("click", () => editor.redo());
    $("complement").addEventListener("change", (e) => editor.setComplement(e.target.checked));
    $("save").addEventListener("click", save);
    $("segment").addEventListener("click", segment);
    $("cancel").addEventListener("click", cancel);
    $("opacity").addEventListener("input", (e) => editor.setResultOpacity(e.target.value / 100));
    $("show-result").addEventListener("change", (e) => editor.setShowResult(e.target.checked));
    $("profile").addEventListener("change", showProfileHelp);
    $("annotator").value = localStorage.getItem("yoho-annotator") || "";
    $("annotator").addEventListener("input", () => {
      app.dirty = Boolean(app.image);
      refreshControls();
    });
    wireRefine();
    document.addEventListener("keydown", onKey);
    window.addEventListener("beforeunload", (e) => {
      if (app.dirty) e.preventDefault();
    });
  }

  function onKey(e) {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName) && e.target.type !== "checkbox" && e.target.type !== "range";
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    if (ctrl && key === "s") {
      e.preventDefault();
      save();
      return;
    }
    if (typing || !app.image) return;
    if (ctrl && key === "z" && !e.shiftKey) {
      e.preventDefault();
      editor.undo();
    } else if (ctrl && (key === "y" || (key === "z" && e.shiftKey))) {
      e.preventDefault();
      editor.redo();
    } else if (ctrl || e.altKey) {
      return;
    } else if (e.shiftKey && (key === "l" || key === "n")) {
      if (refineReady()) setTool(key === "l" ? "fixLesion" : "fixNormal");
    } else if (key === "r" || key === "l" || key === "n") {
      setTool({ r: "roi", l: "lesion", n: "normal" }[key]);
    } else if (key === "enter") {
      e.preventDefault();
      editor.closeRoi();
    } else if (key === "escape") {
      editor.cancelDraft();
    } else if (key === "delete" || key === "backspace") {
      e.preventDefault();
      editor.deleteSelected();
    } else if (key === "[" || key === "]") {
      editor.resizeSelected((key === "]" ? 1 : -1) * (e.shiftKey ? 5 : 1));
    }
  }

  function showProfileHelp() {
    const p = (app.config.profiles || []).find((q) => q.name === $("profile").value);
    $("profile-help").textContent = p ? `${p.description} (${p.steps} steps)` : "";
  }

  async function start() {
    wire();
    refreshControls();
    try {
      app.config = await api("GET", "/api/config");
    } catch (err) {
      status(`Cannot reach the YOHO server: ${err.message}`, "error");
      return;
    }
    $("profile").replaceChildren(...app.config.profiles.map((p) => new Option(p.label || p.name, p.name)));
    $("profile").value = app.config.profile;
    showProfileHelp();
    await Promise.all([refreshRecent(), refreshData().catch((err) => status(err.message, "error"))]);
    const match = /#image=([0-9a-f]{24})$/.exec(window.location.hash);
    if (match) {
      try {
        await openImage(await api("GET", `/api/images/${match[1]}`));
      } catch (err) {
        status(`Could not reopen the image: ${err.message}`, "error");
      }
    }
    document.body.dataset.ready = "true";
  }

  start();
})();
