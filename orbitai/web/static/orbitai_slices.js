/* OrbitAI web app: the slice views drawn in the page (orbitai/web/client_slices.py says what and why).

The shown scan arrives once (gzip'd voxels, coarse first for a big scan); each slice view is one slice of that copy
through a window/level lookup table, with the label maps (the segment colours of `segment_rows`, a translucent fill and
an outline), the SmartFill preview (outline and hatch) and the shown heat map over it (static/orbitai_overlays.js holds
them and how they are shown; static/orbitai_draw.js draws them), drawn on a 2D canvas over the server's view. Slice steps, window/level, zoom, pan and the crosshair (Shift + move or Shift +
click: the other views go to the slices through the point, Slicer's linked cursor) are the page's; their results go
back to the server's scene (slice positions, window/level, the crosshair node), which stays the truth. The page's state
holds node IDs and versions only: the voxels come back from triggers on the page's own websocket.
*/
(function () {
  'use strict';
  const KEY_STEPS = { ArrowUp: 1, ArrowDown: -1, ArrowRight: 1, ArrowLeft: -1, PageUp: 10, PageDown: -10 };
  const SYNC_MS = 120;          // quiet time before a slice position goes to the server
  const PROBE_MS = 100;         // value under the pointer: at most this often
  const ECHO_MS = 30000;         // the server's answers to the page's slice positions can come this late
  const PLACING_MS = 5000;      // after the ruler's button: the server's view until the server says it places
  const TYPES = { uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array };
  // Slicer's default slice orientations (screen right, screen up, normal in RAS) until the server's geometry arrives
  const DEFAULTS = {
    Red: [[-1, 0, 0], [0, 1, 0], [0, 0, 1]],
    Green: [[-1, 0, 0], [0, 0, 1], [0, 1, 0]],
    Yellow: [[0, -1, 0], [0, 0, 1], [1, 0, 0]],
  };
  const S = {
    vol: null, layers: [], views: {}, window: null, level: null, lut: null, lutOffset: 0,
    frames: {}, latency: [], hold: false, held: [], drag: null, cross: null, volumeTask: Promise.resolve(), placingUntil: 0,
  };
  window.orbitaiSlices = S;

  // ------------------------------------------------------------------ small helpers
  const st = (name) => window.trame.state.get(name);
  const trigger = (name, args) => window.trame.trigger(name, args);

  async function bytesOf(data) {
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (data && typeof data.arrayBuffer === 'function') return new Uint8Array(await data.arrayBuffer());
    return new Uint8Array(data || []);
  }

  async function inflate(data) {
    const gz = await bytesOf(data);
    const stream = new Blob([gz]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).arrayBuffer();
  }

  function invert(m) {           // 4x4 row-major affine inverse
    const a = m[0], b = m[1], c = m[2], d = m[4], e = m[5], f = m[6], g = m[8], h = m[9], i = m[10];
    const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
    const det = a * A + b * B + c * C;
    const r = [A / det, -(b * i - c * h) / det, (b * f - c * e) / det, 0,
      B / det, (a * i - c * g) / det, -(a * f - c * d) / det, 0,
      C / det, -(a * h - b * g) / det, (a * e - b * d) / det, 0, 0, 0, 0, 1];
    const t = [m[3], m[7], m[11]];
    for (let k = 0; k < 3; k++) r[4 * k + 3] = -(r[4 * k] * t[0] + r[4 * k + 1] * t[1] + r[4 * k + 2] * t[2]);
    return r;
  }
  const apply = (m, p) => [0, 1, 2].map((k) => m[4 * k] * p[0] + m[4 * k + 1] * p[1] + m[4 * k + 2] * p[2] + m[4 * k + 3]);
  const rotate = (m, p) => [0, 1, 2].map((k) => m[4 * k] * p[0] + m[4 * k + 1] * p[1] + m[4 * k + 2] * p[2]);

  const arrayOf = async (p) => new TYPES[p.dtype](await inflate(p.data));     // a packed array's voxels

  async function volumeOf(p) {
    const arr = await arrayOf(p);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < arr.length; i++) { const v = arr[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
    const [nk, nj, ni] = p.shape;
    const m = p.ijk_to_ras;
    const spacing = [0, 1, 2].map((j) => Math.hypot(m[j], m[4 + j], m[8 + j]));
    return { arr, dtype: p.dtype, dims: [ni, nj, nk], m, inv: invert(m), spacing, slope: p.slope, inter: p.inter,
      lo: lo * p.slope + p.inter, hi: hi * p.slope + p.inter };
  }

  // ------------------------------------------------------------------ views
  function orientation(v) {
    const g = (st('slice_geometry') || {})[v.name];
    let dirs = DEFAULTS[v.name] || DEFAULTS.Red;
    if (g && g.xy_to_ras) {
      const x = g.xy_to_ras;
      dirs = [[x[0], x[4], x[8]], [x[1], x[5], x[9]], [x[2], x[6], x[10]]];
    }
    const vol = S.vol, used = [];
    const axes = dirs.map((d) => {
      const vox = rotate(vol.inv, d);
      let best = -1;
      for (let k = 0; k < 3; k++) if (!used.includes(k) && (best < 0 || Math.abs(vox[k]) > Math.abs(vox[best]))) best = k;
      used.push(best);
      return [best, vox[best] >= 0 ? 1 : -1];
    });
    [[v.u, v.su], [v.w, v.sw], [v.n, v.sn]] = axes;
  }

  function viewOf(canvas) {
    const name = canvas.id.replace('orbitai-slice-', '');
    let v = S.views[name];
    if (!v || v.canvas !== canvas) {
      v = { name, canvas, ctx: canvas.getContext('2d'), zoom: 1, pan: [0, 0], index: null, lastLocal: 0, sent: [],
        off: document.createElement('canvas'), syncTimer: null, probeAt: 0 };
      S.views[name] = v;
      listen(v);
      new ResizeObserver(() => render(v)).observe(canvas);
    }
    return v;
  }

  function attach() {
    document.querySelectorAll('canvas.orbitai-slice').forEach(viewOf);
    for (const [name, v] of Object.entries(S.views)) if (!document.body.contains(v.canvas)) delete S.views[name];
    visibility();
  }

  function shown(v) { return v.canvas.style.display !== 'none'; }

  function visibility() {
    const tool = st('ann_tool_active'), cv = st('client_volume');   // the server's view has the tool
    const on = !!(S.vol && cv && S.vol.key === cv.key && st('client_slices') && (!tool || tool === 'none')
      && !st('ruler_placing') && Date.now() >= S.placingUntil);
    for (const v of Object.values(S.views)) {
      const was = shown(v);
      v.canvas.style.display = on ? 'block' : 'none';
      if (on && !was) { v.index = null; render(v); }
    }
  }

  function placeSlice(v) {        // the slice the server's view is on (its centre's voxel along the normal)
    const g = (st('slice_geometry') || {})[v.name];
    const n = S.vol.dims[v.n];
    if (!g) return Math.floor(n / 2);
    const x = g.xy_to_ras, w = g.size[0] / 2, h = g.size[1] / 2;
    const p = [x[0] * w + x[1] * h + x[3], x[4] * w + x[5] * h + x[7], x[8] * w + x[9] * h + x[11]];
    const k = Math.round(apply(S.vol.inv, p)[v.n]);
    return Math.min(Math.max(k, 0), n - 1);
  }

  // ------------------------------------------------------------------ drawing
  function buildLut() {
    const vol = S.vol;
    if (!vol || S.window === null) return;
    const size = vol.dtype === 'uint8' ? 256 : 65536;
    const offset = vol.dtype === 'int16' ? 32768 : 0;
    const lut = S.lut && S.lut.length === size ? S.lut : new Uint8Array(size);
    const low = S.level - S.window / 2, scale = 255 / Math.max(S.window, 1e-9);
    for (let i = 0; i < size; i++) {
      const g = ((i - offset) * vol.slope + vol.inter - low) * scale;
      lut[i] = g <= 0 ? 0 : g >= 255 ? 255 : g;
    }
    S.lut = lut; S.lutOffset = offset;
  }

  function render(v) {
    const vol = S.vol;
    if (!vol || !shown(v)) return;
    if (!S.lut) buildLut();
    if (!S.lut) return;
    if (v.u === undefined || v.key !== vol.key) { orientation(v); v.key = vol.key; v.index = null; }
    if (v.index === null) { v.index = placeSlice(v); v.serverAt = v.index; }
    const W = vol.dims[v.u], H = vol.dims[v.w];
    if (v.off.width !== W || v.off.height !== H) { v.off.width = W; v.off.height = H; v.image = null; }
    const octx = v.off.getContext('2d');
    if (!v.image) v.image = octx.createImageData(W, H);
    const rgba = v.image.data, arr = vol.arr, lut = S.lut, off = S.lutOffset;
    const strides = [1, vol.dims[0], vol.dims[0] * vol.dims[1]];
    const su = v.su * strides[v.u], sw = -v.sw * strides[v.w];
    let row = v.index * strides[v.n] + (v.su > 0 ? 0 : (W - 1) * strides[v.u]) + (v.sw > 0 ? (H - 1) * strides[v.w] : 0);
    for (let py = 0, q = 0; py < H; py++, row += sw) {
      for (let px = 0, idx = row; px < W; px++, idx += su, q += 4) {
        const g = lut[arr[idx] + off];
        rgba[q] = g; rgba[q + 1] = g; rgba[q + 2] = g; rgba[q + 3] = 255;
      }
    }
    for (const layer of S.layers) window.orbitaiDraw.overlay(rgba, W, H, vol, v, layer);
    octx.putImageData(v.image, 0, 0);
    // the slice fitted to the canvas (Slicer's fit), then the user's zoom and pan
    const c = v.canvas, dpr = window.devicePixelRatio || 1;
    const cw = Math.max(1, Math.round(c.clientWidth * dpr)), ch = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== cw || c.height !== ch) { c.width = cw; c.height = ch; }
    const mmW = W * vol.spacing[v.u], mmH = H * vol.spacing[v.w];
    const scale = Math.min(cw / mmW, ch / mmH) * v.zoom;
    const dw = mmW * scale, dh = mmH * scale;
    const x0 = (cw - dw) / 2 + v.pan[0], y0 = (ch - dh) / 2 + v.pan[1];
    const ctx = v.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000'; ctx.fillRect(0, 0, cw, ch);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(v.off, x0, y0, dw, dh);
    v.rect = { x0, y0, dw, dh, W, H, dpr };
    const cross = st('crosshair') && crossPoint();
    if (cross) {
      const p = apply(vol.inv, cross);
      const px = v.su > 0 ? p[v.u] : W - 1 - p[v.u], py = v.sw > 0 ? H - 1 - p[v.w] : p[v.w];
      window.orbitaiDraw.crosshair(ctx, x0 + (px + 0.5) / W * dw, y0 + (py + 0.5) / H * dh, cw, ch, dpr);
    }
    S.frames[v.name] = (S.frames[v.name] || 0) + 1;
  }

  function renderAll() { for (const v of Object.values(S.views)) render(v); }

  // ------------------------------------------------------------------ to the server
  function rasAt(v, cx, cy) {       // CSS position in the canvas -> RAS (mm), or null outside the slice
    const r = v.rect;
    if (!r) return null;
    const fx = (cx * r.dpr - r.x0) / r.dw * r.W - 0.5, fy = (cy * r.dpr - r.y0) / r.dh * r.H - 0.5;
    if (fx < -0.5 || fy < -0.5 || fx > r.W - 0.5 || fy > r.H - 0.5) return null;
    const p = [0, 0, 0];
    p[v.u] = v.su > 0 ? fx : r.W - 1 - fx; p[v.w] = v.sw > 0 ? r.H - 1 - fy : fy; p[v.n] = v.index;
    return apply(S.vol.m, p);
  }

  function sliceCentre(v) {
    const p = [0, 0, 0];
    p[v.u] = (S.vol.dims[v.u] - 1) / 2; p[v.w] = (S.vol.dims[v.w] - 1) / 2; p[v.n] = v.index;
    return apply(S.vol.m, p);
  }

  function syncSoon(v) {
    v.lastLocal = Date.now();
    clearTimeout(v.syncTimer);
    v.syncTimer = setTimeout(() => {
      const args = [v.name, sliceCentre(v)];
      v.sent = [...v.sent.slice(-19), v.index];      // the server's echoes of these are not moves of its own
      if (S.hold) S.held.push(['orbitai_client_slice', args]); else trigger('orbitai_client_slice', args);
    }, SYNC_MS);
  }

  S.release = () => { const held = S.held; S.held = []; S.hold = false; held.forEach(([name, a]) => trigger(name, a)); };

  // input to drawn frame inside the page (ms), the last 200: what the page itself adds to an input
  function drawn(e) { S.latency = [...S.latency.slice(-199), performance.now() - e.timeStamp]; }

  function step(v, steps) {
    if (!S.vol || v.index === null) return;
    const n = S.vol.dims[v.n];
    const k = Math.min(Math.max(v.index + steps * v.sn, 0), n - 1);
    if (k === v.index) return;
    v.index = k;
    render(v);
    syncSoon(v);
  }
  S.step = (name, steps) => { const v = S.views[name]; if (v) step(v, steps); };
  S.renderAll = renderAll;
  S.volumeOf = volumeOf; S.arrayOf = arrayOf;

  // ------------------------------------------------------------------ the crosshair and linked cursor (Slicer's Shift + move)
  function crossPoint() {        // the crosshair's RAS point: where the user put it, else where the views' slices meet
    if (S.cross) return S.cross;
    if (!S.vol) return null;
    const p = S.vol.dims.map((n) => (n - 1) / 2);
    for (const v of Object.values(S.views)) if (v.index !== null && v.n !== undefined) p[v.n] = v.index;
    return apply(S.vol.m, p);
  }

  function crossAt(v, ras) {      // the crosshair to ras (a point of view v): the other views go to the slices through it
    S.cross = ras;
    const p = apply(S.vol.inv, ras);
    for (const w of Object.values(S.views)) {
      if (w === v || w.index === null || w.n === undefined) continue;
      const k = Math.min(Math.max(Math.round(p[w.n]), 0), S.vol.dims[w.n] - 1);
      if (k !== w.index) { w.index = k; syncSoon(w); }
    }
    renderAll();
    clearTimeout(S.crossTimer);     // the server records it (Slicer's crosshair node) once the pointer rests
    S.crossTimer = setTimeout(() => {
      const args = [ras];
      if (S.hold) S.held.push(['orbitai_client_cross', args]); else trigger('orbitai_client_cross', args);
    }, SYNC_MS);
  }

  function crossFrom(v, e) {      // a Shift + move or Shift + click at pointer event e in view v
    const r = v.canvas.getBoundingClientRect(), ras = S.vol && rasAt(v, e.clientX - r.left, e.clientY - r.top);
    if (!ras) return false;
    crossAt(v, ras);
    drawn(e);
    return true;
  }

  // window/level from a preset or typed in the toolbar (issue 81.8): drawn at once, then sent to the server's scene
  S.setWindowLevel = (w, l) => {
    if (!(w > 0) || !Number.isFinite(l)) return;
    if (S.vol) { S.window = w; S.level = l; buildLut(); renderAll(); }
    trigger('orbitai_client_wl', [w, l]);
  };
  function presetInPage() {
    const wl = (st('wl_preset_values') || {})[st('wl_preset')];
    if (wl && S.vol) { S.window = wl[0]; S.level = wl[1]; buildLut(); renderAll(); }  // the server sets its own
  }
  document.addEventListener('change', (e) => {
    if (!e.target.classList || !e.target.classList.contains('orbitai-wl-input')) return;
    const value = (name) => parseFloat((document.getElementById('orbitai-wl-' + name + '-input') || {}).value);
    S.setWindowLevel(value('window'), value('level'));
  }, true);

  // ------------------------------------------------------------------ the user's input
  function listen(v) {
    const c = v.canvas;
    // the server's view under the canvas must not take these too (the page's capture-phase handlers still see them)
    for (const type of ['pointerdown', 'pointermove', 'pointerup', 'mousedown', 'mousemove', 'mouseup', 'click',
      'dblclick', 'wheel', 'contextmenu']) c.addEventListener(type, (e) => e.stopPropagation());
    c.addEventListener('contextmenu', (e) => e.preventDefault());
    c.addEventListener('wheel', (e) => { e.preventDefault(); step(v, e.deltaY < 0 ? 1 : -1); drawn(e); }, { passive: false });
    c.addEventListener('pointerdown', (e) => {
      if (!S.vol) return;
      if (e.button === 0 && e.shiftKey && crossFrom(v, e)) { e.preventDefault(); return; }
      const wl = e.button === 0 && st('mouse_mode') === 'window_level';
      const kind = wl ? 'wl' : e.button === 2 ? 'zoom' : e.button === 1 ? 'pan' : null;
      if (!kind) return;
      e.preventDefault();
      c.setPointerCapture(e.pointerId);
      S.drag = { v, kind, x: e.clientX, y: e.clientY, window: S.window, level: S.level, zoom: v.zoom, pan: v.pan.slice() };
    });
    c.addEventListener('pointermove', (e) => {
      const d = S.drag;
      if (d && d.v === v) {
        const dx = e.clientX - d.x, dy = e.clientY - d.y;
        if (d.kind === 'wl') {          // Slicer's vtkMRMLWindowLevelWidget: right widens the window, up raises the level
          const range = S.vol.hi - S.vol.lo, gain = range / Math.max(1, Math.min(c.clientWidth, c.clientHeight));
          S.window = Math.max(d.window + gain * dx, 1e-6 * Math.max(range, 1));
          S.level = Math.min(Math.max(d.level - gain * dy, S.vol.lo - S.window / 2), S.vol.hi + S.window / 2);
          buildLut(); renderAll();
        } else if (d.kind === 'zoom') {
          v.zoom = Math.min(Math.max(d.zoom * Math.exp(-dy / 150), 0.1), 40); render(v);
        } else {
          const dpr = window.devicePixelRatio || 1;
          v.pan = [d.pan[0] + dx * dpr, d.pan[1] + dy * dpr]; render(v);
        }
        drawn(e);
        return;
      }
      if (e.shiftKey) crossFrom(v, e);
      const now = Date.now();
      if (now - v.probeAt > PROBE_MS && S.vol) {
        const r = c.getBoundingClientRect(), ras = rasAt(v, e.clientX - r.left, e.clientY - r.top);
        if (ras) { v.probeAt = now; trigger('orbitai_probe_ras', [v.name, ras]); }
      }
    });
    const end = (e) => {
      const d = S.drag;
      if (!d || d.v !== v) return;
      S.drag = null;
      if (c.hasPointerCapture(e.pointerId)) c.releasePointerCapture(e.pointerId);
      if (d.kind === 'wl' && (S.window !== d.window || S.level !== d.level)) trigger('orbitai_client_wl', [S.window, S.level]);
    };
    c.addEventListener('pointerup', end);
    c.addEventListener('pointercancel', end);
  }

  // the view under the pointer takes the arrow and Page keys (before the server-side handler of viewer.KEYS_SCRIPT)
  window.addEventListener('keydown', (e) => {
    const field = document.activeElement && ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName);
    const v = S.views[window.orbitaiView];
    if (field || !(e.key in KEY_STEPS) || !v || !shown(v)) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    step(v, KEY_STEPS[e.key]);
    drawn(e);
  }, true);

  // ------------------------------------------------------------------ from the server
  function loadVolume() {
    S.volumeTask = S.volumeTask.then(async () => {
      const cv = st('client_volume');
      visibility();                  // another scan: the server's view until the page has the new one
      if (!cv) { S.vol = null; S.lut = null; S.layers = []; visibility(); return; }
      let start = S.vol && S.vol.key === cv.key ? S.vol.index + 1 : 0;
      for (let i = start; i < cv.ready; i++) {
        const r = await trigger('orbitai_client_volume', [cv.key, i]);
        const now = st('client_volume');
        if (!r || !now || now.key !== cv.key) return;
        const vol = await volumeOf(r);
        vol.key = cv.key; vol.index = i;
        const keep = S.vol && S.vol.key === cv.key ? Object.values(S.views).map((v) => [v, v.index === null ? null : sliceCentre(v)]) : [];
        if (!keep.length) S.cross = null;       // another scan: no crosshair of the last one
        S.vol = vol; S.lut = null;
        if (S.window === null || !keep.length) { S.window = st('wl_window'); S.level = st('wl_level'); }
        if (S.window === null) { S.window = vol.hi - vol.lo || 1; S.level = (vol.hi + vol.lo) / 2; }
        for (const v of Object.values(S.views)) { orientation(v); v.key = vol.key; v.index = null; }
        for (const [v, ras] of keep) if (ras) v.index = Math.round(apply(vol.inv, ras)[v.n]);
        for (const v of Object.values(S.views)) v.serverAt = placeSlice(v);     // in this copy's voxels
        visibility();
        renderAll();
        window.orbitaiOverlays.load();
      }
    }).catch((err) => console.error('orbitai slices:', err));
  }

  function followServer() {        // the server moved a view's slice (a jump, its slider, a tool): the page follows
    if (!S.vol) return;
    for (const v of Object.values(S.views)) {
      // only a move of this view's slice on the server: a geometry published for another view (or a fit) must not
      // take back a slice the page moved and the server has not had yet (a crosshair move moves two at once)
      if (v.index === null) continue;
      const k = placeSlice(v), moved = k !== v.serverAt;
      v.serverAt = k;
      if (!moved || Date.now() - v.lastLocal < 4 * SYNC_MS + 500) continue;
      // a late echo of a position the page sent (a loaded server answers late) must not take the user back
      if (k === v.index || (v.sent.includes(k) && Date.now() - v.lastLocal < ECHO_MS)) continue;
      v.index = k; v.sent = []; render(v);
    }
  }

  function serverWindow() {
    const w = st('wl_window'), l = st('wl_level');
    if (S.drag || w === null || l === null) return;
    if (S.window !== null && Math.abs(w - S.window) < 0.06 && Math.abs(l - S.level) < 0.06) return;
    S.window = w; S.level = l; buildLut(); renderAll();
  }

  function start() {
    const watch = (keys, f) => window.trame.state.watch(keys, () => f());
    watch(['client_volume'], loadVolume);
    watch(['client_overlays'], () => window.orbitaiOverlays.load());
    watch(['segment_rows', 'heat_maps', 'overlay_recorded'], () => window.orbitaiOverlays.refresh());
    watch(['wl_window', 'wl_level'], serverWindow);
    watch(['wl_preset'], presetInPage);
    watch(['slice_geometry'], followServer);
    watch(['jump_to'], () => { const j = st('jump_to'); if (j && j.length === 3) S.cross = j; renderAll(); });
    watch(['crosshair'], renderAll);
    watch(['client_slices', 'ann_tool_active'], visibility);
    watch(['ruler_placing'], () => { S.placingUntil = 0; visibility(); });
    // the ruler's button: the server's view takes the next clicks at once, before the server's answer arrives
    document.addEventListener('click', (e) => {
      if (!e.target.closest || !e.target.closest('#orbitai-ruler')) return;
      S.placingUntil = Date.now() + PLACING_MS;
      visibility();
      setTimeout(visibility, PLACING_MS + 10);
    }, true);
    setInterval(attach, 300);
    attach();
    loadVolume();
  }

  const boot = setInterval(() => {
    if (window.trame && window.trame.state && window.trame.state.watch && window.trame.trigger) {
      clearInterval(boot);
      start();
    }
  }, 50);
})();
