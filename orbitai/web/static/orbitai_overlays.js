/* OrbitAI web app: the page's copy of the shown scan's label maps, SmartFill preview and heat maps, and how they are
shown (orbitai/web/client_slices.py says what the server sends; static/orbitai_draw.js draws them).

- Loading: the layers of the version `client_overlays` names, fetched from the server (`orbitai_client_overlays`):
  whole, or, when that version was made from the one the page holds (an edit), only each label map's changed box,
  written into the page's copy (issue 81); a small update of boxes comes with the notice itself (no request).
- Shown in the page (issue 81): a segment's visibility box and opacity slider and a heat map's show box and opacity
  slider (orbitai/web/segments.py) call `segment` / `heat` here: the page draws the change at once from the layers it
  holds (colour tables only, no new data), keeps it in `overlay_pending` (a client-only state key: never sent) so the
  boxes and sliders show it, and tells the server afterwards, only to record it; the pending value goes once the
  server's answer (its rows) is in.

`window.orbitaiOverlays` holds these for the page's templates and static/orbitai_slices.js (whose `window.orbitaiSlices`
holds the layers and draws them).
*/
(function () {
  'use strict';
  if (window.orbitaiOverlays) return;      // loaded twice (a page script added again): the first copy stays
  const st = (name) => window.trame.state.get(name);
  const S = () => window.orbitaiSlices;
  let seq = 0;
  const latest = {};                        // pending key and field -> the number of the last message sent for it
  const answered = {};                      // pending key and field -> [key, field, the change's number], answered
  const resting = {};                       // pending key and field -> the timer that sends a slider's value at rest
  const REST_MS = 400;

  // ------------------------------------------------------------------ shown in the page

  /** The value the page shows: the user's pending change of ``field`` of ``key``, else the server's ``fallback``. */
  function value(pending, key, field, fallback) {
    const p = pending && pending[key];
    return p && field in p ? p[field] : fallback;
  }

  function setPending(key, change) {        // the user's newest value: no earlier answer settles it
    for (const field of Object.keys(change)) delete answered[key + '|' + field];
    const all = { ...(st('overlay_pending') || {}) };
    all[key] = { ...(all[key] || {}), ...change, at: ++seq };
    window.trame.state.set('overlay_pending', all);       // client-only: re-renders the boxes, sends nothing
  }

  function settled(key, field) {           // the server has recorded ``field`` of ``key``: its rows show it now
    const all = { ...(st('overlay_pending') || {}) }, rest = { ...(all[key] || {}) };
    delete rest[field];
    if (Object.keys(rest).some((k) => k !== 'at')) all[key] = rest; else delete all[key];
    window.trame.state.set('overlay_pending', all);
  }

  // The server records the change and answers with its number; the pending value goes once the rows that show that
  // change are in (`overlay_recorded` comes with them: wslink may send the answer before the rows, and rows of an
  // earlier change after a later answer's).
  function record(key, field, name, args) {
    const n = ++seq, which = key + '|' + field;
    latest[which] = n;
    delete answered[which];
    const done = (count) => {
      if (latest[which] !== n) return;
      answered[which] = [key, field, Number.isInteger(count) ? count : 0];
      reconcile();
      refresh();
    };
    Promise.resolve(window.trame.trigger(name, args)).then(done, () => done(0));
  }

  function forget(which) {
    const [key, field] = answered[which];
    delete answered[which]; delete latest[which];
    settled(key, field);
  }

  function reconcile() {                    // answered changes whose rows are in: the rows rule again
    const recorded = st('overlay_recorded') || 0;
    for (const [which, [, , count]] of Object.entries(answered)) if (recorded >= count) forget(which);
  }

  function soon(key, field, send, go) {     // now, or (a slider moving) once it rests: the end of a drag says now
    const which = key + '|' + field;
    clearTimeout(resting[which]);
    if (send) go(); else resting[which] = setTimeout(go, REST_MS);
  }

  // In-page time of each change (ms, the last 200, `window.orbitaiSlices.overlayLatency`): from the input event that
  // made it to the end of the views' redraw (`draw`; `redraw`: the redraw alone) and to the next animation frame's
  // start (`frame`: the frame that shows it is under way), on the page's clock.
  function timed(what, change) {
    const e = window.event, t0 = e && e.timeStamp ? e.timeStamp : performance.now(), s = S();
    const r0 = performance.now();
    change();
    const end = performance.now();
    if (!s) return;
    requestAnimationFrame(() => {
      const m = { what, draw: end - t0, redraw: end - r0, frame: performance.now() - t0 };
      s.overlayLatency = [...(s.overlayLatency || []).slice(-199), m];
    });
  }

  /** A segment's visibility (``field`` 'visible') or 2D fill opacity ('opacity') set to ``v``: drawn now; the server
   * is told now when ``send``, else once the value rests (a slider: the end of its drag, or its keys). */
  function segment(key, field, v, send = true) {
    timed('segment ' + field, () => { setPending(key, { [field]: v }); refresh(); });
    soon(key, field, send, () => record(key, field,
      field === 'visible' ? 'orbitai_segment_visible' : 'orbitai_segment_opacity', [key, v]));
  }

  /** A heat map's show box (``field`` 'shown': one heat map at a time) or opacity ('opacity'), as `segment`. */
  function heat(id, field, v, send = true) {
    const key = 'heat|' + id;
    timed('heat ' + field, () => { setPending(key, { [field]: v }); refresh(); });
    soon(key, field, send, () => record(key, field,
      field === 'shown' ? 'orbitai_heat_map_shown' : 'orbitai_heat_map_opacity', [id, v]));
  }

  function segmentRows() {                  // key -> the segment's row with the page's pending changes
    const rows = {}, pending = st('overlay_pending') || {};
    for (const r of st('segment_rows') || []) rows[r.key] = { ...r, ...(pending[r.key] || {}) };
    return rows;
  }

  function shownHeat(pending = st('overlay_pending') || {}) {   // id -> opacity of the heat map shown (none or one)
    let best = null;
    for (const m of st('heat_maps') || []) {
      const p = pending['heat|' + m.id] || {};
      const on = 'shown' in p ? p.shown : m.shown, at = 'shown' in p ? p.at : 0;
      const opacity = 'opacity' in p ? p.opacity : m.opacity;
      if (on && (!best || at >= best.at)) best = { id: m.id, opacity, at };
    }
    return best ? { [best.id]: best.opacity } : {};
  }

  // ------------------------------------------------------------------ colour tables
  function segmentLut(layer, rows) {       // fill colours and alphas (RGBA) and outline alphas of a label map's values
    const lut = new Uint8Array(4 * (layer.segments.length + 1)), outline = new Uint8Array(layer.segments.length + 1);
    layer.segments.forEach((sid, n) => {
      const r = rows[layer.node + '|' + sid];
      if (!r || !r.visible) return;
      const c = r.color || '#ffffff', own = r.opacity === undefined ? 1 : r.opacity;    // Slicer's defaults
      const fill = r.fill_2d === undefined ? 0.5 : r.fill_2d, edge = r.outline_2d === undefined ? 1 : r.outline_2d;
      lut.set([parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16),
        Math.round(255 * own * fill)], 4 * (n + 1));
      outline[n + 1] = Math.round(255 * edge);
    });
    layer.outline = outline;
    return lut;
  }

  function previewLut(layer) {     // the SmartFill preview: its segment's colour, no fill, an opaque outline and hatch
    const lut = new Uint8Array(4 * (layer.segments.length + 1)), outline = new Uint8Array(layer.segments.length + 1);
    layer.segments.forEach((sid, n) => {
      lut.set([...(layer.colors[n] || [255, 255, 255]), 0], 4 * (n + 1));
      outline[n + 1] = 255;
    });
    layer.outline = outline;
    return lut;
  }

  function heatLut(layer, shown) {          // null (not drawn) unless the heat map is the one shown
    if (!(layer.node in shown)) return null;
    const lut = new Uint8Array(4 * 257), alpha = Math.round(255 * shown[layer.node]);
    layer.colors.forEach((c, n) => lut.set([c[0], c[1], c[2], alpha], 4 * (n + 1)));
    const span = layer.high - layer.low || 1;
    layer.index = (raw) => {
      const v = raw * layer.slope + layer.inter;
      if (v <= layer.low) return 0;
      return Math.min(256, 1 + Math.floor((v - layer.low) / span * 255));
    };
    return lut;
  }

  /** Every layer's colour table again from the rows and the pending changes, then every view drawn. */
  function refresh() {
    const s = S();
    if (!s) return;
    reconcile();
    const rows = segmentRows(), shown = shownHeat();
    for (const l of s.layers) {
      l.lut = l.kind === 'heat' ? heatLut(l, shown) : l.kind === 'preview' ? previewLut(l) : segmentLut(l, rows);
    }
    s.renderAll();
  }

  // ------------------------------------------------------------------ from the server
  // A version made from the one the page holds comes as changed boxes (orbitai/web/overlay_patches.py): each layer
  // whole, named only (`same`: unchanged) or its changed box (`patch`, at `offset` [k, j, i]) to write into the copy.
  // A small update comes with its notice (`client_overlays`' layers): the page that holds its base asks for nothing.
  async function fetchLayers(s, ov, base) {
    const inline = base !== null && ov.base === base && Array.isArray(ov.layers);
    const r = inline ? ov : await window.trame.trigger('orbitai_client_overlays', [ov.version, base]);
    if (!r || r.key !== s.vol.key) return null;
    const old = {}, layers = [], log = { version: r.version, base: r.base, whole: 0, boxes: [], bytes: 0,
      fetched: performance.now(), inline };
    for (const l of s.layers) old[l.kind + '|' + l.node] = l;
    for (const p of r.layers) {
      const l = old[p.kind + '|' + p.node];
      if (p.same || p.patch) {
        if (!l || r.base !== base) return base === null ? null : fetchLayers(s, ov, null);    // not the page's copy
        if (p.patch) { await write(s, l, p); log.boxes.push(p.patch.shape); log.bytes += size(p.patch.data); }
        layers.push(l);
        continue;
      }
      const n = await s.volumeOf(p);
      Object.assign(n, { kind: p.kind, node: p.node, segments: p.segments, colors: p.colors, low: p.low, high: p.high });
      log.whole += 1; log.bytes += size(p.data);
      layers.push(n);
    }
    return { r, layers, log };
  }

  const size = (data) => (data && (data.byteLength || data.size)) || 0;      // gzip'd bytes received

  async function write(s, layer, p) {       // a changed box into the page's copy of a label map
    const src = await s.arrayOf(p.patch), [bk, bj, bi] = p.patch.shape, [ni, nj] = layer.dims;
    const [k0, j0, i0] = p.offset, dst = layer.arr;
    for (let k = 0; k < bk; k++) {
      for (let j = 0; j < bj; j++) {
        const from = (k * bj + j) * bi;
        dst.set(src.subarray(from, from + bi), ((k0 + k) * nj + j0 + j) * ni + i0);
      }
    }
  }

  function load() {
    const s = S(), heard = performance.now();
    s.volumeTask = s.volumeTask.then(async () => {
      const ov = st('client_overlays');
      if (!ov || !s.vol) { s.layers = []; s.renderAll(); return; }
      if (s.overlayVersion === ov.version) return;
      if (ov.key !== s.vol.key) { s.layers = []; return; }     // another scan's: its own are on their way
      const mine = s.overlayKey === s.vol.key && s.overlayVersion === ov.base ? ov.base : null;
      const got = await fetchLayers(s, ov, mine);
      if (!got) return;
      s.layers = got.layers; s.overlayVersion = got.r.version; s.overlayKey = s.vol.key;
      got.log.written = performance.now();
      refresh();
      // the last 50 updates: what each carried, and when (the page's clock) it was heard of, fetched, written, drawn
      Object.assign(got.log, { heard, at: performance.now() });
      s.overlayLog = [...(s.overlayLog || []).slice(-49), got.log];
    }).catch((err) => console.error('orbitai overlays:', err));
  }

  /** Whether the page shows heat map ``id`` (its box: showing one hides the others at once, as the server does). */
  const heatOn = (pending, id) => id in shownHeat(pending || {});

  window.orbitaiOverlays = { value, segment, heat, heatOn, refresh, load };
})();
