"""Binary s-t minimum cut for Boykov-Jolly graph cuts, on scipy's max-flow.

Why hand-written: the usual graph-cut packages (PyMaxflow, gco) are GPL or unmaintained, and
``scipy.sparse.csgraph.maximum_flow`` only returns a flow, not the cut, and only takes integer
capacities. This module adds what is missing: the energy -> graph construction (terminal links
from unary costs, neighbour links from pairwise weights, hard constraints), the float -> integer
capacity scaling, and the min-cut side from the residual graph (breadth-first search from the
source over edges whose residual capacity is positive).

Energy minimised (labels L_p in {0 = background, 1 = object})::

    E(L) = sum_p D_p(L_p) + sum_{(p,q)} w_pq [L_p != L_q]

Source = object, sink = background: the edge source->p costs D_p(background) when cut, and
p->sink costs D_p(object).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from orbitai.errors import AnnotationError

#: Largest finite integer capacity after scaling (resolution of the energy ~ 1e-4 relative).
_MAX_CAP = 10_000
#: Keep the sum of all finite capacities below this so int32 flow sums never overflow.
_SUM_LIMIT = 2 ** 30


def min_cut(n_nodes: int, edges: np.ndarray, weights: np.ndarray, cost_fg: np.ndarray,
            cost_bg: np.ndarray, hard_fg: np.ndarray | None = None,
            hard_bg: np.ndarray | None = None, method: str = "dinic") -> np.ndarray:
    """Minimise the two-label energy above and return the object mask (bool, one per node).

    ``edges`` is an (m, 2) int array of undirected node pairs (each pair once), ``weights`` their
    non-negative costs; ``cost_fg``/``cost_bg`` the unary costs D_p(object)/D_p(background);
    ``hard_fg``/``hard_bg`` boolean arrays of nodes forced to object/background.
    """
    n = int(n_nodes)
    if n == 0:
        return np.zeros(0, bool)
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    weights = np.asarray(weights, np.float64).ravel()
    cost_fg = np.asarray(cost_fg, np.float64).ravel()
    cost_bg = np.asarray(cost_bg, np.float64).ravel()
    if cost_fg.shape != (n,) or cost_bg.shape != (n,) or weights.shape != (len(edges),):
        raise AnnotationError("min_cut: unary costs must have one value per node and weights one per edge.")
    for name, arr in (("weights", weights), ("cost_fg", cost_fg), ("cost_bg", cost_bg)):
        if not np.all(np.isfinite(arr)):
            raise AnnotationError(f"min_cut: {name} contains NaN or infinite values.")
    if np.any(weights < 0):
        raise AnnotationError("min_cut: pairwise weights must be non-negative.")
    # Only the difference of the unary costs matters: keep one positive terminal link per node.
    diff = cost_bg - cost_fg                  # > 0: prefers object
    src = np.maximum(diff, 0.0)               # source->p capacity (paid if p ends background)
    snk = np.maximum(-diff, 0.0)              # p->sink capacity (paid if p ends object)

    finite_max = max(float(weights.max(initial=0.0)), float(src.max(initial=0.0)), float(snk.max(initial=0.0)))
    total = 2.0 * weights.sum() + src.sum() + snk.sum()
    scale = _MAX_CAP / finite_max if finite_max > 0 else 1.0
    if total * scale > _SUM_LIMIT:
        scale = _SUM_LIMIT / total
    w_int = np.rint(weights * scale).astype(np.int64)
    src_int = np.rint(src * scale).astype(np.int64)
    snk_int = np.rint(snk * scale).astype(np.int64)
    # Infinite capacity: more than any finite cut can ever cost.
    inf = int(min(2 ** 31 - 1, int(w_int.sum() * 2 + src_int.sum() + snk_int.sum()) + 1))
    if hard_fg is not None:
        hard_fg = np.asarray(hard_fg, bool).ravel()
        src_int[hard_fg] = inf
        snk_int[hard_fg] = 0
    if hard_bg is not None:
        hard_bg = np.asarray(hard_bg, bool).ravel()
        conflict = hard_bg & (hard_fg if hard_fg is not None else False)
        if np.any(conflict):
            raise AnnotationError(f"min_cut: {int(conflict.sum())} nodes are marked both object and background.")
        snk_int[hard_bg] = inf
        src_int[hard_bg] = 0

    s, t = n, n + 1
    keep = w_int > 0
    a, b, w = edges[keep, 0], edges[keep, 1], w_int[keep]
    sn = np.nonzero(src_int)[0]
    tn = np.nonzero(snk_int)[0]
    rows = np.concatenate([a, b, np.full(len(sn), s), tn])
    cols = np.concatenate([b, a, sn, np.full(len(tn), t)])
    caps = np.concatenate([w, w, src_int[sn], snk_int[tn]])
    cap = sp.csr_array((caps.astype(np.int32), (rows.astype(np.int32), cols.astype(np.int32))),
                       shape=(n + 2, n + 2))
    cap.sum_duplicates()
    flow = maximum_flow(cap, s, t, method=method).flow
    # Residual capacities: c - f (f is skew-symmetric, so reverse edges of used edges appear).
    residual = (cap - flow).tocsr()
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    reached = breadth_first_order(residual, s, directed=True, return_predecessors=False)
    side = np.zeros(n + 2, bool)
    side[reached] = True
    return side[:n]


def grid_edges(shape: tuple[int, ...], spacing_kji: tuple[float, ...] | None = None,
               active: np.ndarray | None = None):
    """6-neighbour (2D: 4-neighbour) edges of a voxel grid, optionally restricted to ``active``.

    Returns ``(node_index, pairs, axis_of_pair)`` where ``node_index`` maps voxels to node ids
    (-1 outside ``active``) and ``pairs`` is (m, 2) in node ids.
    """
    if active is None:
        active = np.ones(shape, bool)
    node = np.full(shape, -1, np.int64)
    node[active] = np.arange(int(active.sum()))
    pairs, axes = [], []
    for ax in range(len(shape)):
        sl_a = [slice(None)] * len(shape)
        sl_b = [slice(None)] * len(shape)
        sl_a[ax] = slice(0, -1)
        sl_b[ax] = slice(1, None)
        na, nb = node[tuple(sl_a)], node[tuple(sl_b)]
        ok = (na >= 0) & (nb >= 0)
        pairs.append(np.stack([na[ok], nb[ok]], 1))
        axes.append(np.full(int(ok.sum()), ax, np.int8))
    return node, np.concatenate(pairs), np.concatenate(axes)


# --------------------------------------------------------------------------- voxel grids
def contrast_weights(image: np.ndarray, spacing_kji, sigma: float, smoothness: float = 1.0) -> list:
    """Boykov-Jolly neighbour weights per axis: ``smoothness * exp(-dI^2 / 2 sigma^2) / dist``.

    Returns one array per axis with the shape of the image shortened by one along that axis
    (weight between voxel p and its successor along the axis)."""
    x = np.asarray(image, np.float32)
    out = []
    inv = np.float32(-1.0 / (2.0 * sigma * sigma))
    for ax in range(x.ndim):
        if x.shape[ax] < 2:
            out.append(np.zeros([n - 1 if a == ax else n for a, n in enumerate(x.shape)], np.float32))
            continue
        d = np.diff(x, axis=ax)
        w = np.exp(d * d * inv, dtype=np.float32)
        w *= np.float32(smoothness / float(spacing_kji[ax]))
        out.append(w)
    return out


def _pair_slices(ndim: int, ax: int):
    a = [slice(None)] * ndim
    b = [slice(None)] * ndim
    a[ax] = slice(0, -1)
    b[ax] = slice(1, None)
    return tuple(a), tuple(b)


def grid_cut(cost_fg: np.ndarray, cost_bg: np.ndarray, weights: list, active: np.ndarray | None = None,
             fixed: np.ndarray | None = None, hard_fg: np.ndarray | None = None,
             hard_bg: np.ndarray | None = None) -> np.ndarray:
    """Graph cut on a voxel grid. Voxels outside ``active`` keep the label in ``fixed`` and act
    as boundary conditions (their neighbour links become unary terms of the active voxels)."""
    shape = cost_fg.shape
    if active is None:
        active = np.ones(shape, bool)
    if fixed is None:
        fixed = np.zeros(shape, bool)
    fixed = np.asarray(fixed, bool)
    node = np.full(shape, -1, np.int64)
    n = int(np.count_nonzero(active))
    node[active] = np.arange(n)
    cf = np.asarray(cost_fg, np.float64)[active].copy()
    cb = np.asarray(cost_bg, np.float64)[active].copy()
    pairs, wts = [], []
    for ax, w in enumerate(weights):
        sa, sb = _pair_slices(len(shape), ax)
        na, nb = node[sa], node[sb]
        both = (na >= 0) & (nb >= 0)
        pairs.append(np.stack([na[both], nb[both]], 1))
        wts.append(w[both].astype(np.float64))
        # one side active, other fixed: the link is paid when the active voxel differs from it
        for free, other, fx in ((na, nb, fixed[sb]), (nb, na, fixed[sa])):
            m = (free >= 0) & (other < 0)
            if not np.any(m):
                continue
            idx = free[m]
            ww = w[m].astype(np.float64)
            f = fx[m]
            np.add.at(cb, idx[f], ww[f])      # neighbour is object: background costs the link
            np.add.at(cf, idx[~f], ww[~f])    # neighbour is background: object costs the link
    hf = None if hard_fg is None else np.asarray(hard_fg, bool)[active]
    hb = None if hard_bg is None else np.asarray(hard_bg, bool)[active]
    side = min_cut(n, np.concatenate(pairs), np.concatenate(wts), cf, cb, hf, hb)
    out = fixed.copy()
    out[active] = side
    return out


def superpixel_cut(labels: np.ndarray, n_labels: int, cost_fg: np.ndarray, cost_bg: np.ndarray,
                   weights: list) -> np.ndarray:
    """The voxel energy restricted to labelings constant on each superpixel, solved on the
    region adjacency graph: unary = sum over the superpixel's voxels, edge = sum of the voxel
    links that cross the boundary between two superpixels. Returns the object mask (voxels)."""
    lab = np.asarray(labels, np.int64)
    n = int(n_labels)
    cf = np.bincount(lab.ravel(), weights=np.asarray(cost_fg, np.float64).ravel(), minlength=n)
    cb = np.bincount(lab.ravel(), weights=np.asarray(cost_bg, np.float64).ravel(), minlength=n)
    keys, vals = [], []
    for ax, w in enumerate(weights):
        sa, sb = _pair_slices(lab.ndim, ax)
        la, lb = lab[sa], lab[sb]
        diff = la != lb
        lo = np.minimum(la[diff], lb[diff])
        hi = np.maximum(la[diff], lb[diff])
        keys.append(lo * n + hi)
        vals.append(w[diff].astype(np.float64))
    uk, inv = np.unique(np.concatenate(keys), return_inverse=True)
    ew = np.bincount(inv, weights=np.concatenate(vals), minlength=len(uk))
    edges = np.stack([uk // n, uk % n], 1)
    side = min_cut(n, edges, ew, cf, cb)
    return side[lab]
