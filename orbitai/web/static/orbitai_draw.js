/* OrbitAI web app: what the page draws over a slice view (orbitai/web/client_slices.py says why the page draws).

- A heat map: its colours blended at the map's opacity.
- Segments as Slicer's 2D display draws them: a translucent fill (the segment's 2D fill opacity times the node's, 0.5
  by default) and an outline (its boundary voxels in the slice: those with a 4-neighbour of another value) at the
  outline opacity (1, opaque, by default), so the anatomy under a segment stays visible.
- The SmartFill preview: no fill, its outline and a diagonal hatch (one voxel line in `HATCH`) in the segment's
  colour, opaque, so it cannot be taken for an accepted segment.
- The crosshair: a line across the view at the crosshair point in each direction.

`window.orbitaiDraw` holds these for static/orbitai_slices.js (loaded after this file).
*/
(function () {
  'use strict';
  if (window.orbitaiDraw) return;          // loaded twice (a page script added again): the first copy stays
  const HATCH = 4;                          // the preview's hatch: every HATCH-th diagonal of the slice's voxels
  const CROSS_COLOR = '#ffd400';            // Slicer's crosshair yellow

  const apply = (m, p) => [0, 1, 2].map((k) => m[4 * k] * p[0] + m[4 * k + 1] * p[1] + m[4 * k + 2] * p[2] + m[4 * k + 3]);
  const mul = (a, b) => {
    const r = new Array(16).fill(0);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 4; k++) r[4 * i + j] += a[4 * i + k] * b[4 * k + j];
    return r;
  };

  function values(layer, vol, v, W, H) {
    // the layer's value (a label, or a heat map's colour index) under each voxel (px, py) of the view's slice image,
    // 0 outside the layer: an affine map from the slice's voxels to the layer's, stepped per pixel
    const toLayer = mul(layer.inv, vol.m);
    const ijk = (px, py) => {
      const p = [0, 0, 0];
      p[v.u] = v.su > 0 ? px : W - 1 - px; p[v.w] = v.sw > 0 ? H - 1 - py : py; p[v.n] = v.index;
      return apply(toLayer, p);
    };
    const o = ijk(0, 0), dx = ijk(1, 0).map((c, k) => c - o[k]), dy = ijk(0, 1).map((c, k) => c - o[k]);
    const [ni, nj, nk] = layer.dims, arr = layer.arr, heat = layer.kind === 'heat';
    const out = new Int32Array(W * H);
    for (let py = 0, q = 0; py < H; py++) {
      let x = o[0] + dy[0] * py, y = o[1] + dy[1] * py, z = o[2] + dy[2] * py;
      for (let px = 0; px < W; px++, q++, x += dx[0], y += dx[1], z += dx[2]) {
        const i = Math.round(x), j = Math.round(y), k = Math.round(z);
        if (i < 0 || j < 0 || k < 0 || i >= ni || j >= nj || k >= nk) continue;
        const c = arr[i + ni * (j + nj * k)];
        out[q] = heat ? layer.index(c) : c;
      }
    }
    return out;
  }

  function mix(rgba, q, lut, c, a) {         // colour c of the lookup table over pixel q, at alpha a (0-255)
    const f = a / 255, g = 1 - f;
    rgba[q] = rgba[q] * g + lut[4 * c] * f;
    rgba[q + 1] = rgba[q + 1] * g + lut[4 * c + 1] * f;
    rgba[q + 2] = rgba[q + 2] * g + lut[4 * c + 2] * f;
  }

  function edge(lab, p, px, py, W, H, c) {   // whether voxel p (value c) lies on its segment's boundary in the slice
    return px === 0 || py === 0 || px === W - 1 || py === H - 1
      || lab[p - 1] !== c || lab[p + 1] !== c || lab[p - W] !== c || lab[p + W] !== c;
  }

  /** Blend one layer (heat map, label map or preview) over the slice image ``rgba`` (W x H) of view ``v``. */
  function overlay(rgba, W, H, vol, v, layer) {
    const lut = layer.lut;
    if (!lut) return;
    const lab = values(layer, vol, v, W, H), outline = layer.outline, preview = layer.kind === 'preview';
    for (let py = 0, p = 0; py < H; py++) {
      for (let px = 0; px < W; px++, p++) {
        const c = lab[p];
        if (c <= 0) continue;
        let a;
        if (!outline) a = lut[4 * c + 3];                                   // a heat map
        else if (edge(lab, p, px, py, W, H, c)) a = outline[c];
        else a = preview ? ((px + py) % HATCH === 0 ? outline[c] : 0) : lut[4 * c + 3];
        if (a) mix(rgba, 4 * p, lut, c, a);
      }
    }
  }

  /** The crosshair's two lines through canvas point (X, Y) across a view of ``cw`` x ``ch`` canvas pixels. */
  function crosshair(ctx, X, Y, cw, ch, dpr) {
    const lw = Math.max(1, Math.round(dpr)), half = lw % 2 ? 0.5 : 0;    // on whole pixels: crisp, in its own colour
    const x = Math.round(X) + half, y = Math.round(Y) + half;
    ctx.strokeStyle = CROSS_COLOR; ctx.lineWidth = lw;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, ch); ctx.moveTo(0, y); ctx.lineTo(cw, y); ctx.stroke();
  }

  window.orbitaiDraw = { overlay, crosshair, HATCH, CROSS_COLOR };
})();
