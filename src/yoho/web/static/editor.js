/* Canvas editor for one image: the ROI polygon(s), lesion and normal-tissue circles, undo/redo,
 * and the result layer drawn over the image. Coordinates are image pixels with pixel centres at
 * integers (x right, y down), as in the yoho-annotation JSON schema.
 * No dependencies: plain DOM and canvas APIs. */
"use strict";

(function () {
  const VERTEX_HIT = 8; // screen pixels
  const RIM_HIT = 6;
  const DRAG_START = 3;
  const COLOURS = {
    roi: "#4f9dff",
    roiFill: "rgba(79,157,255,0.13)",
    lesion: "#ff4d4f",
    normal: "#22d3ee",
    selected: "#ffd60a",
  };
  // Correction circles (placed on a result, sent with Refine) are drawn dashed in their class's
  // colour; the tools "fixLesion" and "fixNormal" place them.
  const FIX = { fixLesion: "lesion", fixNormal: "normal" };
  const isFix = (cls) => Object.prototype.hasOwnProperty.call(FIX, cls);

  function defaultRadius(width, height) {
    // The authors' r_min (yoho.annotation.default_radius_range): a sensible first radius.
    let r = Math.ceil((Math.max(width, height) / 256) * 8);
    return r + (r % 2);
  }

  const round1 = (v) => Math.round(v * 10) / 10;
  const dist = (ax, ay, bx, by) => Math.hypot(ax - bx, ay - by);

  function emptyState() {
    return { polygons: [], holes: [], draft: null, lesion: [], normal: [], complement: false,
             fixLesion: [], fixNormal: [] };
  }

  class Editor {
    constructor(canvas, onChange) {
      this.canvas = canvas;
      this.ctx = canvas.getContext("2d");
      this.onChange = onChange || (() => {});
      this.image = null;
      this.width = 0;
      this.height = 0;
      this.state = emptyState();
      this.extras = {}; // fields of a loaded annotation kept as they were (r_min, r_max, protocol)
      this.undoStack = [];
      this.redoStack = [];
      this.tool = "roi";
      this.selection = null; // {kind: "vertex", ring: "polygons"|"draft", poly, index} | {kind: "circle", cls, index}
      this.drag = null;
      this.hover = null; // image point under the mouse (for the rubber band)
      this.result = null;
      this.resultOpacity = 0.85;
      this.showResult = true;
      this.lastRadius = { lesion: null, normal: null, fixLesion: null, fixNormal: null };
      this.past = []; // corrections of earlier rounds: [{cls: "lesion"|"normal", x, y, r}], drawn only
      this.annotationKey = this._annotationKey();
      this.wheelTimer = null;
      this.view = { scale: 1, ox: 0, oy: 0 };
      this._bind();
      new ResizeObserver(() => this.draw()).observe(canvas);
    }

    // ---- image, annotation, history -----------------------------------------------------------

    setImage(image, width, height) {
      this.image = image;
      this.width = width;
      this.height = height;
      this.state = emptyState();
      this.extras = {};
      this.undoStack = [];
      this.redoStack = [];
      this.selection = null;
      this.result = null;
      this.lastRadius = { lesion: null, normal: null, fixLesion: null, fixNormal: null };
      this.past = [];
      this.annotationKey = this._annotationKey();
      this.draw();
      this.onChange("image");
    }

    loadAnnotation(data) {
      const pts = (list) => (list || []).map((p) => p.map((q) => [Number(q[0]), Number(q[1])]));
      const circles = (list) => (list || []).map((c) => ({ x: +c.x, y: +c.y, r: +c.r }));
      this.state = {
        polygons: pts(data.roi && data.roi.polygons),
        holes: pts(data.roi && data.roi.holes),
        draft: null,
        lesion: circles(data.lesion_circles),
        normal: circles(data.normal_circles),
        complement: Boolean(data.complement),
        fixLesion: [],
        fixNormal: [],
      };
      this.annotationKey = this._annotationKey();
      this.extras = {};
      for (const key of ["r_min", "r_max", "protocol"]) {
        if (data[key] !== undefined && data[key] !== null) this.extras[key] = data[key];
      }
      this.undoStack = [];
      this.redoStack = [];
      this.selection = null;
      this.draw();
      this.onChange("load");
    }

    toAnnotation(annotator) {
      const out = {
        format: "yoho-annotation",
        version: 1,
        image_size: { width: this.width, height: this.height },
        roi: { polygons: this.state.polygons, holes: this.state.holes },
        complement: this.state.complement,
        lesion_circles: this.state.lesion,
        normal_circles: this.state.normal,
        annotator: annotator || "",
      };
      return Object.assign(out, this.extras);
    }

    /** Reasons the annotation cannot be saved yet (the server checks everything again). */
    problems() {
      const s = this.state;
      const out = [];
      if (s.draft) out.push("close the ROI polygon (click its first point or press Enter)");
      if (!s.polygons.length) out.push("draw the ROI polygon");
      const target = s.complement ? s.normal : s.lesion;
      if (!target.length) {
        out.push(s.complement ? "place at least one normal-tissue circle (complement is on)"
                              : "place at least one lesion circle");
      }
      return out;
    }

    _snapshot() {
      return JSON.stringify(this.state);
    }

    /** Record the state before a change (call, then mutate). */
    _remember() {
      this.undoStack.push(this._snapshot());
      if (this.undoStack.length > 200) this.undoStack.shift();
      this.redoStack = [];
    }

    _changed(what) {
      this.draw();
      // A change of the correction circles only is no change of the annotation.
      const key = this._annotationKey();
      const onlyCorrections = key === this.annotationKey;
      this.annotationKey = key;
      this.onChange(onlyCorrections ? "correction" : what || "edit");
    }

    /** The annotation part of the state (everything but the correction circles), as text. */
    _annotationKey() {
      return JSON.stringify(Object.assign({}, this.state, { fixLesion: undefined, fixNormal: undefined }));
    }

    // ---- correction rounds (placed on a result, sent with Refine) ----------------------------

    isCorrectionTool() {
      return isFix(this.tool);
    }

    /** The pending correction circles, as the refine request takes them. */
    corrections() {
      const copy = (list) => list.map((c) => ({ x: c.x, y: c.y, r: c.r }));
      return { lesion_circles: copy(this.state.fixLesion), normal_circles: copy(this.state.fixNormal) };
    }

    clearCorrections() {
      if (!this.state.fixLesion.length && !this.state.fixNormal.length) return;
      this._remember();
      this.state.fixLesion = [];
      this.state.fixNormal = [];
      if (this.selection && this.selection.kind === "circle" && isFix(this.selection.cls)) this.selection = null;
      this._changed("correction");
    }

    /** Corrections of the rounds already applied: [{lesion_circles, normal_circles}, ...]. */
    setPastCorrections(rounds) {
      this.past = [];
      for (const r of rounds || []) {
        for (const c of r.lesion_circles || []) this.past.push({ cls: "lesion", x: +c.x, y: +c.y, r: +c.r });
        for (const c of r.normal_circles || []) this.past.push({ cls: "normal", x: +c.x, y: +c.y, r: +c.r });
      }
      this.draw();
    }

    undo() {
      if (!this.undoStack.length) return false;
      this.redoStack.push(this._snapshot());
      this.state = JSON.parse(this.undoStack.pop());
      this.selection = null;
      this._changed("undo");
      return true;
    }

    redo() {
      if (!this.redoStack.length) return false;
      this.undoStack.push(this._snapshot());
      this.state = JSON.parse(this.redoStack.pop());
      this.selection = null;
      this._changed("redo");
      return true;
    }

    // ---- commands (buttons and keys) --------------------------------------------------------

    setTool(tool) {
      this.tool = tool;
      this.draw();
    }

    setComplement(value) {
      if (this.state.complement === value) return;
      this._remember();
      this.state.complement = value;
      this._changed("complement");
    }

    closeRoi() {
      const draft = this.state.draft;
      if (!draft || draft.length < 3) return false;
      this._remember();
      this.state.polygons.push(draft);
      this.state.draft = null;
      this.selection = null;
      this._changed("close");
      return true;
    }

    clearRoi() {
      if (!this.state.polygons.length && !this.state.draft && !this.state.holes.length) return;
      this._remember();
      this.state.polygons = [];
      this.state.holes = [];
      this.state.draft = null;
      this.selection = null;
      this._changed("clear");
    }

    cancelDraft() {
      if (this.state.draft) {
        this._remember();
        this.state.draft = null;
        this._changed("draft");
      } else if (this.selection) {
        this.selection = null;
        this.draw();
        this.onChange("select");
      }
    }

    deleteSelected() {
      const sel = this.selection;
      if (!sel) return false;
      this._remember();
      if (sel.kind === "circle") {
        this.state[sel.cls].splice(sel.index, 1);
      } else if (sel.ring === "draft") {
        this.state.draft.splice(sel.index, 1);
        if (!this.state.draft.length) this.state.draft = null;
      } else {
        const poly = this.state.polygons[sel.poly];
        poly.splice(sel.index, 1);
        if (poly.length < 3) this.state.polygons.splice(sel.poly, 1); // no longer a polygon
      }
      this.selection = null;
      this._changed("delete");
      return true;
    }

    resizeSelected(delta) {
      const sel = this.selection;
      if (!sel || sel.kind !== "circle") return false;
      const c = this.state[sel.cls][sel.index];
      this._rememberCoalesced();
      this._setRadius(c, c.r + delta);
      this.lastRadius[sel.cls] = c.r;
      this._changed("radius");
      return true;
    }

    setResult(image) {
      this.result = image;
      this.draw();
    }

    setResultOpacity(value) {
      this.resultOpacity = value;
      this.draw();
    }

    setShowResult(value) {
      this.showResult = value;
      this.draw();
    }

    /** Client (page) coordinates of an image point; used by the browser tests. */
    clientPoint(x, y) {
      const rect = this.canvas.getBoundingClientRect();
      const v = this.view;
      return { x: rect.left + v.ox + (x + 0.5) * v.scale, y: rect.top + v.oy + (y + 0.5) * v.scale };
    }

    // ---- geometry ------------------------------------------------------------------------------

    _layout() {
      const rect = this.canvas.getBoundingClientRect();
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(rect.width * dpr));
      const h = Math.max(1, Math.round(rect.height * dpr));
      if (this.canvas.width !== w || this.canvas.height !== h) {
        this.canvas.width = w;
        this.canvas.height = h;
      }
      if (this.width && this.height) {
        const margin = 12;
        const scale = Math.min(
          (rect.width - 2 * margin) / this.width,
          (rect.height - 2 * margin) / this.height,
        );
        const s = Math.max(scale, 0.01);
        this.view = {
          scale: s,
          ox: (rect.width - this.width * s) / 2,
          oy: (rect.height - this.height * s) / 2,
        };
      }
      return { rect, dpr };
    }

    _toImage(event) {
      const rect = this.canvas.getBoundingClientRect();
      const v = this.view;
      return {
        x: (event.clientX - rect.left - v.ox) / v.scale - 0.5,
        y: (event.clientY - rect.top - v.oy) / v.scale - 0.5,
      };
    }

    _onImage(p) {
      return p.x >= -0.5 && p.y >= -0.5 && p.x <= this.width - 0.5 && p.y <= this.height - 0.5;
    }

    _clampPoint(p) {
      return {
        x: round1(Math.min(Math.max(p.x, 0), this.width - 1)),
        y: round1(Math.min(Math.max(p.y, 0), this.height - 1)),
      };
    }

    /** Largest radius that keeps the disc inside the image (validation allows half a pixel). */
    _maxRadius(c) {
      return Math.max(
        1,
        Math.min(c.x + 0.5, c.y + 0.5, this.width - 0.5 - c.x, this.height - 0.5 - c.y),
      );
    }

    _setRadius(c, r) {
      // Rounded down, with a margin for floating point: the server's check must pass too.
      c.r = round1(Math.min(Math.max(r, 1), Math.floor((this._maxRadius(c) - 1e-6) * 10) / 10));
    }

    _moveCircle(c, x, y) {
      const clamp = (v, lo, hi) => (lo <= hi ? Math.min(Math.max(v, lo), hi) : (lo + hi) / 2);
      c.x = round1(clamp(x, c.r - 0.5, this.width - 0.5 - c.r));
      c.y = round1(clamp(y, c.r - 0.5, this.height - 0.5 - c.r));
      this._setRadius(c, c.r);
    }

    _hit(event) {
      const p = this._toImage(event);
      const s = this.view.scale;
      const rings = [];
      // The correction tools touch correction circles only (the annotation stays as it was).
      const fixing = isFix(this.tool);
      if (this.state.draft && !fixing) rings.push(["draft", 0, this.state.draft]);
      if (!fixing) this.state.polygons.forEach((poly, i) => rings.push(["polygons", i, poly]));
      for (const [ring, poly, points] of rings) {
        for (let i = 0; i < points.length; i++) {
          if (dist(p.x, p.y, points[i][0], points[i][1]) * s <= VERTEX_HIT) {
            return { kind: "vertex", ring, poly, index: i };
          }
        }
      }
      let inside = null;
      for (const cls of fixing ? Object.keys(FIX) : ["lesion", "normal", ...Object.keys(FIX)]) {
        this.state[cls].forEach((c, index) => {
          const d = dist(p.x, p.y, c.x, c.y) * s;
          if (Math.abs(d - c.r * s) <= RIM_HIT && (!inside || inside.part !== "rim")) {
            inside = { kind: "circle", cls, index, part: "rim" };
          } else if (d < c.r * s && (!inside || (inside.part !== "rim" && c.r < inside.r))) {
            inside = { kind: "circle", cls, index, part: "body", r: c.r };
          }
        });
      }
      return inside;
    }

    _edgeAt(p) {
      const s = this.view.scale;
      for (let k = 0; k < this.state.polygons.length; k++) {
        const poly = this.state.polygons[k];
        for (let i = 0; i < poly.length; i++) {
          const a = poly[i];
          const b = poly[(i + 1) % poly.length];
          const dx = b[0] - a[0];
          const dy = b[1] - a[1];
          const len2 = dx * dx + dy * dy || 1;
          const t = Math.min(1, Math.max(0, ((p.x - a[0]) * dx + (p.y - a[1]) * dy) / len2));
          if (dist(p.x, p.y, a[0] + t * dx, a[1] + t * dy) * s <= RIM_HIT) return { poly: k, index: i + 1 };
        }
      }
      return null;
    }

    _rememberCoalesced() {
      // Wheel and [ ] steps come in bursts: one undo step per burst.
      if (!this.wheelTimer) this._remember();
      clearTimeout(this.wheelTimer);
      this.wheelTimer = setTimeout(() => (this.wheelTimer = null), 700);
    }

    // ---- mouse -----------------------------------------------------------------------------

    _bind() {
      const c = this.canvas;
      c.addEventListener("pointerdown", (e) => this._down(e));
      c.addEventListener("pointermove", (e) => this._move(e));
      c.addEventListener("pointerup", (e) => this._up(e));
      c.addEventListener("pointercancel", (e) => this._up(e));
      c.addEventListener("pointerleave", () => {
        this.hover = null;
        this.draw();
      });
      c.addEventListener("dblclick", (e) => this._dblclick(e));
      c.addEventListener("wheel", (e) => this._wheel(e), { passive: false });
      c.addEventListener("contextmenu", (e) => e.preventDefault());
    }

    _down(e) {
      if (!this.image || e.button !== 0) return;
      this.canvas.focus({ preventScroll: true });
      this.canvas.setPointerCapture(e.pointerId);
      const p = this._toImage(e);
      const hit = this._hit(e);
      const before = this._snapshot();
      this.drag = { startX: e.clientX, startY: e.clientY, moved: false, before, hit, mode: null };
      if (hit && hit.kind === "vertex") {
        this.selection = hit;
        const closable = hit.ring === "draft" && hit.index === 0 && this.state.draft.length >= 3;
        this.drag.mode = closable && this.tool === "roi" ? "close-or-move" : "vertex";
      } else if (hit && hit.kind === "circle") {
        this.selection = { kind: "circle", cls: hit.cls, index: hit.index };
        const circle = this.state[hit.cls][hit.index];
        this.drag.mode = hit.part === "rim" ? "radius" : "circle";
        this.drag.offset = { x: p.x - circle.x, y: p.y - circle.y };
      } else if (!this._onImage(p)) {
        this.selection = null;
        this.drag = null;
      } else if (this.tool === "roi") {
        this._roiClick(p, e.shiftKey);
        this.drag = null;
      } else {
        const cls = this.tool;
        const q = this._clampPoint(p);
        const circle = { x: q.x, y: q.y, r: 1 };
        this._setRadius(circle, this.lastRadius[cls] || defaultRadius(this.width, this.height));
        this._remember();
        this.state[cls].push(circle);
        this.selection = { kind: "circle", cls, index: this.state[cls].length - 1 };
        this.drag.mode = "new-circle";
        this.drag.before = null; // already remembered
        this._changed("circle");
        return;
      }
      this.draw();
      this.onChange("select");
    }

    _roiClick(p, shift) {
      const q = this._clampPoint(p);
      if (this.state.draft) {
        this._remember();
        this.state.draft.push([q.x, q.y]);
        this.selection = null;
        this._changed("vertex");
      } else if (!this.state.polygons.length || shift) {
        this._remember();
        this.state.draft = [[q.x, q.y]];
        this.selection = null;
        this._changed("vertex");
      } else {
        this.onChange("roi-closed-hint");
      }
    }

    _move(e) {
      if (!this.image) return;
      const p = this._toImage(e);
      this.hover = this._onImage(p) ? p : null;
      const d = this.drag;
      if (!d || !d.mode) {
        const hit = this._hit(e);
        this.canvas.classList.toggle("grab", Boolean(hit && (hit.kind === "vertex" || hit.part === "body")));
        this.canvas.classList.toggle("resize", Boolean(hit && hit.part === "rim"));
        if (this.state.draft) this.draw();
        return;
      }
      if (!d.moved && dist(e.clientX, e.clientY, d.startX, d.startY) < DRAG_START) return;
      d.moved = true;
      const sel = this.selection;
      if (d.mode === "vertex" || d.mode === "close-or-move") {
        const q = this._clampPoint(p);
        const ring = sel.ring === "draft" ? this.state.draft : this.state.polygons[sel.poly];
        ring[sel.index] = [q.x, q.y];
      } else if (d.mode === "circle") {
        const c = this.state[sel.cls][sel.index];
        this._moveCircle(c, round1(p.x - d.offset.x), round1(p.y - d.offset.y));
      } else if (d.mode === "radius" || d.mode === "new-circle") {
        const c = this.state[sel.cls][sel.index];
        this._setRadius(c, dist(p.x, p.y, c.x, c.y));
        this.lastRadius[sel.cls] = c.r;
      }
      this.draw();
      this.onChange("drag");
    }

    _up(e) {
      const d = this.drag;
      this.drag = null;
      if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
      if (!d || !d.mode) return;
      if (d.mode === "close-or-move" && !d.moved) {
        this.closeRoi();
        return;
      }
      if (d.moved && d.before !== null && d.before !== this._snapshot()) {
        this.undoStack.push(d.before);
        this.redoStack = [];
      }
      if (d.moved || d.mode === "new-circle") this._changed("drag-end");
    }

    _dblclick(e) {
      if (!this.image || this.tool !== "roi") return;
      const p = this._toImage(e);
      const edge = this._edgeAt(p);
      if (!edge) return;
      const q = this._clampPoint(p);
      this._remember();
      this.state.polygons[edge.poly].splice(edge.index, 0, [q.x, q.y]);
      this.selection = { kind: "vertex", ring: "polygons", poly: edge.poly, index: edge.index };
      this._changed("vertex");
    }

    _wheel(e) {
      if (!this.image) return;
      const hit = this._hit(e);
      let target = null;
      if (hit && hit.kind === "circle") target = { kind: "circle", cls: hit.cls, index: hit.index };
      else if (this.selection && this.selection.kind === "circle") target = this.selection;
      if (!target) return;
      e.preventDefault();
      this.selection = target;
      const step = (e.shiftKey ? 5 : 1) * (e.deltaY < 0 ? 1 : -1);
      this.resizeSelected(step);
    }

    // ---- drawing ---------------------------------------------------------------------------

    draw() {
      const { rect, dpr } = this._layout();
      const ctx = this.ctx;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, rect.width, rect.height);
      if (!this.image) return;
      const { scale: s, ox, oy } = this.view;
      const X = (x) => ox + (x + 0.5) * s;
      const Y = (y) => oy + (y + 0.5) * s;
      ctx.imageSmoothingEnabled = s < 1;
      ctx.drawImage(this.image, ox, oy, this.width * s, this.height * s);
      if (this.result && this.showResult) {
        ctx.globalAlpha = this.resultOpacity;
        ctx.drawImage(this.result, ox, oy, this.width * s, this.height * s);
        ctx.globalAlpha = 1;
      }
      const st = this.state;
      // ROI: the union of the polygons minus the holes, as the server rasterises it. Each outline
      // is filled nonzero (a lasso that crosses itself keeps all it encloses) on a layer of its
      // own, so overlapping polygons neither cancel nor darken; then the holes are cut out.
      if (st.polygons.length) {
        const trace = (c, rings) => {
          c.beginPath();
          for (const ring of rings) {
            ring.forEach((pt, i) => (i ? c.lineTo(X(pt[0]), Y(pt[1])) : c.moveTo(X(pt[0]), Y(pt[1]))));
            c.closePath();
          }
        };
        const layer = this.roiLayer || (this.roiLayer = document.createElement("canvas"));
        layer.width = this.canvas.width;
        layer.height = this.canvas.height;
        const lc = layer.getContext("2d");
        lc.setTransform(dpr, 0, 0, dpr, 0, 0);
        lc.fillStyle = "#000";
        for (const ring of st.polygons) {
          trace(lc, [ring]);
          lc.fill("nonzero");
        }
        lc.globalCompositeOperation = "destination-out";
        for (const ring of st.holes) {
          trace(lc, [ring]);
          lc.fill("nonzero");
        }
        lc.globalCompositeOperation = "source-in";
        lc.fillStyle = COLOURS.roiFill;
        lc.fillRect(0, 0, rect.width, rect.height);
        ctx.setTransform(1, 0, 0, 1, 0, 0);
        ctx.drawImage(layer, 0, 0);
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        trace(ctx, [...st.polygons, ...st.holes]);
        ctx.lineWidth = 2;
        ctx.strokeStyle = COLOURS.roi;
        ctx.setLineDash([]);
        ctx.stroke();
      }
      if (st.draft) {
        ctx.beginPath();
        st.draft.forEach((pt, i) => (i ? ctx.lineTo(X(pt[0]), Y(pt[1])) : ctx.moveTo(X(pt[0]), Y(pt[1]))));
        if (this.hover && !this.drag) ctx.lineTo(X(this.hover.x), Y(this.hover.y));
        ctx.setLineDash([6, 4]);
        ctx.lineWidth = 2;
        ctx.strokeStyle = COLOURS.roi;
        ctx.stroke();
        ctx.setLineDash([]);
      }
      const sel = this.selection;
      const vertex = (pt, selected, big) => {
        const r = big ? 6 : 4;
        ctx.fillStyle = selected ? COLOURS.selected : "#ffffff";
        ctx.strokeStyle = COLOURS.roi;
        ctx.lineWidth = 2;
        ctx.fillRect(X(pt[0]) - r, Y(pt[1]) - r, 2 * r, 2 * r);
        ctx.strokeRect(X(pt[0]) - r, Y(pt[1]) - r, 2 * r, 2 * r);
      };
      st.polygons.forEach((poly, k) =>
        poly.forEach((pt, i) =>
          vertex(pt, sel && sel.kind === "vertex" && sel.ring === "polygons" && sel.poly === k && sel.index === i, false),
        ),
      );
      if (st.draft) {
        st.draft.forEach((pt, i) =>
          vertex(pt, sel && sel.kind === "vertex" && sel.ring === "draft" && sel.index === i, i === 0 && st.draft.length >= 3),
        );
      }
      for (const c of this.past) {
        ctx.beginPath();
        ctx.arc(X(c.x), Y(c.y), Math.max(c.r * s, 1), 0, 2 * Math.PI);
        ctx.setLineDash([2, 3]);
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = COLOURS[c.cls];
        ctx.stroke();
        ctx.setLineDash([]);
      }
      for (const cls of ["lesion", "normal", ...Object.keys(FIX)]) {
        st[cls].forEach((c, i) => {
          const selected = sel && sel.kind === "circle" && sel.cls === cls && sel.index === i;
          ctx.beginPath();
          ctx.arc(X(c.x), Y(c.y), Math.max(c.r * s, 1), 0, 2 * Math.PI);
          if (selected) {
            ctx.lineWidth = 5;
            ctx.strokeStyle = COLOURS.selected;
            ctx.stroke();
          }
          ctx.lineWidth = 2.5;
          ctx.strokeStyle = COLOURS[FIX[cls] || cls];
          if (isFix(cls)) ctx.setLineDash([6, 4]);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.beginPath();
          ctx.moveTo(X(c.x) - 4, Y(c.y));
          ctx.lineTo(X(c.x) + 4, Y(c.y));
          ctx.moveTo(X(c.x), Y(c.y) - 4);
          ctx.lineTo(X(c.x), Y(c.y) + 4);
          ctx.lineWidth = 1.5;
          ctx.stroke();
        });
      }
    }
  }

  window.YohoEditor = Editor;
  window.yohoDefaultRadius = defaultRadius;
})();
