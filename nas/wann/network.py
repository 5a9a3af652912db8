"""A weight-agnostic network, compiled once and run for many weights at once.

A WANN genome (:mod:`nas.spaces.wann`) is a feed-forward graph: input nodes ``0..n_in-1``, a
bias node ``n_in`` (always 1), output nodes ``n_in+1..n_in+n_out`` and hidden nodes above,
each hidden node with one activation, every enabled connection carrying a weight. Gaier & Ha
score a topology with **one shared weight** on every connection, at several values.

:func:`compile_plan` orders the nodes in levels (a node's level is the longest path to it from
the inputs; every output sits in the last level, as nothing reads an output), so a forward
pass is one matrix product per level for **every weight and every sample together**:
``values (W, B, P) @ M (W, P, L)`` where ``M`` holds the level's incoming weights, then each
node's activation (torch: a sum of each activation present times a 0/1 mask, so nothing
branches on data). The same plan runs in NumPy (:func:`forward_numpy`, the search's evaluator:
it reads only the values a level is connected to, keeps a level's nodes of one activation
together so each activation is one call on a block of rows, and works in reused scratch arrays)
and in torch (:class:`WannNet`, for tuning individual
weights by gradient, for REINFORCE, and for ONNX export), and tests check the two agree.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np

ACTIVATIONS: tuple[str, ...] = ("linear", "step", "sin", "cos", "gaussian", "tanh", "sigmoid", "inverse", "abs",
                                "relu")
"""The paper's activation set (its release numbers them 1-10 in a different order)."""

SHARED_WEIGHTS: tuple[float, ...] = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
"""The shared weight values every topology is scored at (the paper's)."""


def activation(name: str, xp=np):
    """Activation ``name`` written once for NumPy (``xp=np``) and torch (``xp=torch``): only
    functions both modules have, with the same meaning."""
    return {
        "linear": lambda x: x,
        "step": lambda x: (x > 0) * xp.ones_like(x),
        "sin": lambda x: xp.sin(math.pi * x),
        "cos": lambda x: xp.cos(math.pi * x),
        "gaussian": lambda x: xp.exp(-0.5 * x * x),
        "tanh": xp.tanh,
        "sigmoid": lambda x: (xp.tanh(x / 2.0) + 1.0) / 2.0,
        "inverse": lambda x: -x,
        "abs": xp.abs,
        "relu": lambda x: xp.maximum(x, xp.zeros_like(x)),
    }[name]


@dataclass(frozen=True)
class Level:
    nodes: np.ndarray  # node ids computed at this level, grouped by activation (in ACTIVATIONS' order)
    rows: np.ndarray  # per incoming connection: position of its source in the value vector
    cols: np.ndarray  # per incoming connection: local index of its destination in this level
    edges: np.ndarray  # per incoming connection: index into the genome's connection list
    acts: tuple[tuple[str, np.ndarray], ...]  # (activation, 0/1 mask over the level's nodes)
    src: np.ndarray  # the positions this level reads (sorted, unique): only these rows are touched
    mat: np.ndarray  # (nodes, len(src)) connection counts: the level's matrix at weight 1, over src
    act_slices: tuple[tuple[str, int, int], ...]  # (activation, start, stop): each activation's nodes, contiguous


@dataclass(frozen=True)
class Plan:
    n_in: int
    n_out: int
    n_conns: int
    levels: tuple[Level, ...]
    out_pos: np.ndarray  # positions of the output nodes in the final value vector

    @property
    def width(self) -> int:
        return self.n_in + 1 + sum(len(lv.nodes) for lv in self.levels)

    @functools.cached_property
    def widest(self) -> int:
        """The most nodes of one level (the size of a level's scratch rows)."""
        return max((len(lv.nodes) for lv in self.levels), default=0)

    @functools.cached_property
    def most_reads(self) -> int:
        """The most source rows one level reads."""
        return max((len(lv.src) for lv in self.levels), default=0)


def compile_plan(spec: dict) -> Plan:
    """Levels of ``spec`` (see :mod:`nas.spaces.wann` for its fields; it must be valid)."""
    n_in, n_out = int(spec["inputs"]), int(spec["outputs"])
    outputs = list(range(n_in + 1, n_in + 1 + n_out))
    act = {int(i): a for i, a in spec["hidden"]}
    act.update({o: spec.get("out_act", "linear") for o in outputs})
    conns = [(int(s), int(d)) for s, d in spec["conns"]]
    incoming: dict[int, list[int]] = {n: [] for n in act}
    for e, (s, d) in enumerate(conns):
        incoming[d].append(e)
    depth = {i: 0 for i in range(n_in + 1)}
    hidden = sorted(int(i) for i, _ in spec["hidden"])
    # longest path from the inputs, in topological order (Kahn): a node is placed once all its sources are
    waiting = {n: sum(conns[e][0] in act for e in incoming[n]) for n in hidden}
    readers: dict[int, list[int]] = {}
    for s, d in conns:
        if s in waiting:
            readers.setdefault(s, []).append(d)
    ready = [n for n in hidden if waiting[n] == 0]
    while ready:
        n = ready.pop()
        depth[n] = 1 + max((depth[conns[e][0]] for e in incoming[n]), default=0)
        for d in readers.get(n, ()):
            if d in waiting:
                waiting[d] -= 1
                if waiting[d] == 0:
                    ready.append(d)
    if len(depth) < n_in + 1 + len(hidden):
        raise ValueError("the WANN graph has a cycle")
    by_depth: dict[int, list[int]] = {}
    for n in hidden:
        by_depth.setdefault(depth[n], []).append(n)
    order = {a: i for i, a in enumerate(ACTIVATIONS)}
    # within a level the order of nodes is free: group them by activation, so that each activation
    # reads and writes one contiguous block of rows (outputs share one activation and keep their order)
    groups = [sorted(by_depth[k], key=lambda n: order[act[n]]) for k in sorted(by_depth)] + [outputs]
    pos = {i: i for i in range(n_in + 1)}
    levels = []
    for nodes in groups:
        local = {n: j for j, n in enumerate(nodes)}
        es = [e for n in nodes for e in incoming[n]]
        rows = [pos[conns[e][0]] for e in es]
        cols = [local[conns[e][1]] for e in es]
        names = [act[n] for n in nodes]
        act_slices, start = [], 0
        for j in range(1, len(nodes) + 1):  # nodes are grouped by activation: one slice per run of a name
            if j == len(nodes) or names[j] != names[start]:
                act_slices.append((names[start], start, j))
                start = j
        acts = tuple((a, np.array([b == a for b in names], dtype=np.float64)) for a, _, _ in act_slices)
        src = sorted(set(rows))
        at = {r: i for i, r in enumerate(src)}
        mat = np.zeros((len(nodes), len(src)))
        for r, c in zip(rows, cols):
            mat[c, at[r]] += 1.0
        levels.append(Level(np.array(nodes, dtype=np.int64), np.array(rows, dtype=np.int64),
                            np.array(cols, dtype=np.int64), np.array(es, dtype=np.int64), acts,
                            np.array(src, dtype=np.int64), mat, tuple(act_slices)))
        for n in nodes:
            pos[n] = len(pos)
    return Plan(n_in, n_out, len(conns), tuple(levels), np.array([pos[o] for o in outputs], dtype=np.int64))


_WORKSPACE = threading.local()


def _buffer(name: str, size: int) -> np.ndarray:
    """A float64 scratch array of ``size`` elements, reused across calls in this thread.

    A forward pass of a grown network touches megabytes (every weight row times every image,
    for every node). Allocated afresh each call, those pages are returned to the system and
    faulted in again on the next call: under Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` (its
    default for worker processes) that doubled an evaluation's time. Reusing one array per
    thread keeps them mapped."""
    buf = getattr(_WORKSPACE, name, None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 2 * buf.size if buf is not None else 0))
        setattr(_WORKSPACE, name, buf)
    return buf[:size]


def _activate_into(name: str, x: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = activation(name)(x)``, computed in place (the same operations in the same
    order as :func:`activation`, so the values are identical)."""
    if name == "linear":
        np.copyto(out, x)
    elif name == "step":
        np.greater(x, 0, out=out)
    elif name in ("sin", "cos"):
        np.multiply(x, math.pi, out=out)
        (np.sin if name == "sin" else np.cos)(out, out=out)
    elif name == "gaussian":
        np.multiply(x, -0.5, out=out)
        np.multiply(out, x, out=out)
        np.exp(out, out=out)
    elif name == "tanh":
        np.tanh(x, out=out)
    elif name == "sigmoid":
        np.divide(x, 2.0, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out /= 2.0
    elif name == "inverse":
        np.negative(x, out=out)
    elif name == "abs":
        np.abs(x, out=out)
    elif name == "relu":
        np.maximum(x, 0.0, out=out)
    else:
        raise ValueError(f"unknown activation {name!r}")


def forward_numpy(plan: Plan, x: np.ndarray, weights) -> np.ndarray:
    """Outputs ``(W, B, n_out)`` for inputs ``x`` (``(B, n_in)`` shared by every weight row, or
    ``(W, B, n_in)``, one batch per row) and ``weights`` (``(W,)`` shared weights or ``(W, E)``
    one per connection). With shared weights a level is one product of its 0/1 connection
    matrix with the rows it reads, scaled per weight row afterwards (``w * (v @ A) == v @ (w * A)``).

    Only the rows a level reads enter its product (``Level.src``), so a level costs about its
    connections, not every value computed so far. Values live in per-thread scratch arrays
    (:func:`_buffer`); the result is a fresh array."""
    w = np.asarray(weights, dtype=np.float64)
    shared = w.ndim == 1
    n_w = w.shape[0]
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != plan.n_in:
        raise ValueError(f"the network has {plan.n_in} inputs, the data {x.shape[-1]}")
    batch = x.shape[-2]
    wb = n_w * batch
    # node-major values: row = node, columns = (weight row, sample); a level reads rows, writes a block of rows
    flat = _buffer("vals", plan.width * wb).reshape(plan.width, wb)
    vals = flat.reshape(plan.width, n_w, batch)
    vals[:plan.n_in] = np.moveaxis(x, -1, 0) if x.ndim == 3 else x.T[:, None, :]
    vals[plan.n_in] = 1.0
    pre_buf = _buffer("pre", plan.widest * wb)
    p = plan.n_in + 1
    for lv in plan.levels:
        n, k = len(lv.nodes), len(lv.src)
        pre = pre_buf[:n * wb].reshape(n, wb)
        if k == 0:
            pre[:] = 0.0
        elif shared:
            if x.ndim == 2 and lv.src[-1] < plan.n_in + 1:  # inputs only, the same in every row: one product
                np.multiply((lv.mat @ flat[lv.src, :batch])[:, None, :], w[None, :, None],
                            out=pre.reshape(n, n_w, batch))
            else:
                if lv.src[-1] - lv.src[0] + 1 == k:  # contiguous rows: read them in place
                    rows = flat[lv.src[0]:lv.src[0] + k]
                else:
                    rows = np.take(flat, lv.src, axis=0, mode="clip",  # "raise" would buffer the output
                                   out=_buffer("rows", plan.most_reads * wb)[:k * wb].reshape(k, wb))
                np.matmul(lv.mat, rows, out=pre)
                pre.reshape(n, n_w, batch)[...] *= w[None, :, None]
        else:
            m = np.zeros((n_w, k, n))
            np.add.at(m, (slice(None), np.searchsorted(lv.src, lv.rows), lv.cols), w[:, lv.edges])
            np.einsum("pwb,wpn->nwb", vals[lv.src], m, out=pre.reshape(n, n_w, batch))
        for a, start, stop in lv.act_slices:
            _activate_into(a, pre[start:stop], flat[p + start:p + stop])
        p += n
    return np.ascontiguousarray(np.moveaxis(vals[plan.out_pos], 0, -1))


class _TorchPlan:
    """The plan's index arrays as torch tensors (built once per network)."""

    def __init__(self, plan: Plan):
        import torch

        self.plan = plan
        self.levels = [(torch.as_tensor(lv.rows), torch.as_tensor(lv.cols), torch.as_tensor(lv.edges), len(lv.nodes),
                        [(activation(a, torch), torch.as_tensor(mask, dtype=torch.float32)) for a, mask in lv.acts])
                       for lv in plan.levels]
        self.out_pos = torch.as_tensor(plan.out_pos)


def forward_torch(tp: _TorchPlan, x, w):
    """:func:`forward_numpy` in torch, differentiable in ``w`` (``(W, E)``); ``x`` ``(B, n_in)``
    or ``(W, B, n_in)``. Returns ``(W, B, n_out)``."""
    import torch

    n_w = w.shape[0]
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(n_w, *x.shape)
    vals = torch.cat([x, torch.ones(*x.shape[:2], 1, dtype=x.dtype)], dim=2)
    for rows, cols, edges, n_nodes, acts in tp.levels:
        m = torch.zeros(n_w, vals.shape[2], n_nodes, dtype=x.dtype)
        if len(edges):
            m = m.index_put((torch.arange(n_w)[:, None], rows[None, :], cols[None, :]), w[:, edges],
                            accumulate=True)
        pre = vals @ m
        out = sum(f(pre) * mask.to(x.dtype) for f, mask in acts)
        vals = torch.cat([vals, out], dim=2)
    return vals[:, :, tp.out_pos]


def _module_base():
    import torch

    return torch.nn.Module


class WannNet(_module_base()):
    """One WANN as a torch module: ``forward(x)`` takes a batch of inputs (images are flattened)
    and returns ``(B, n_out)``. ``weights`` is one shared weight (a float) or one per
    connection; with ``trainable`` the per-connection weights are a parameter (gradient tuning,
    REINFORCE). Constant weights are folded into per-level matrices, so the exported ONNX graph
    is matrix products and elementwise activations only."""

    def __init__(self, spec: dict, weights=1.0, trainable: bool = False):
        import torch

        super().__init__()
        self.spec = spec
        self.plan = compile_plan(spec)
        self._tp = _TorchPlan(self.plan)
        w = torch.as_tensor(np.broadcast_to(np.asarray(weights, dtype=np.float32), (self.plan.n_conns,)).copy())
        self.trainable = trainable
        if trainable:
            self.weight = torch.nn.Parameter(w)
        else:
            self.register_buffer("weight", w)
            for i, m in enumerate(self._matrices(w.unsqueeze(0))):  # buffers: .double() and .to() carry them
                self.register_buffer(f"level{i}", m[0])

    def _matrices(self, w):
        import torch

        mats, width = [], self.plan.n_in + 1
        for rows, cols, edges, n_nodes, _ in self._tp.levels:
            m = torch.zeros(w.shape[0], width, n_nodes)
            if len(edges):
                m = m.index_put((torch.arange(w.shape[0])[:, None], rows[None, :], cols[None, :]), w[:, edges],
                                accumulate=True)
            mats.append(m)
            width += n_nodes
        return mats

    def forward(self, x):
        import torch

        x = x.reshape(x.shape[0], -1)
        if self.trainable:
            return forward_torch(self._tp, x, self.weight.unsqueeze(0))[0]
        vals = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        for i, (_, _, _, _, acts) in enumerate(self._tp.levels):
            pre = vals @ getattr(self, f"level{i}")
            out = sum(f(pre) * mask.to(pre.dtype) for f, mask in acts)
            vals = torch.cat([vals, out], dim=1)
        return vals[:, self._tp.out_pos]


class WannEnsemble(_module_base()):
    """The shared weights' ensemble of one classifier as a torch module (the paper's vote, as
    :func:`nas.wann.tasks.classify_scores` scores it): ``forward(x)`` returns ``(B, n_out)`` log
    probabilities ``log(mean_w softmax(net_w(x)))``, so softmax of the output is the ensemble's
    mean probability and argmax its vote. One :class:`WannNet` per shared weight, each folded
    into matrices, so the exported ONNX graph is matrix products, elementwise activations and a
    log-sum-exp."""

    def __init__(self, spec: dict, weights):
        import torch

        super().__init__()
        weights = [float(w) for w in np.atleast_1d(np.asarray(weights, dtype=float))]
        if not weights:
            raise ValueError("a WANN ensemble needs at least one shared weight")
        self.nets = torch.nn.ModuleList(WannNet(spec, w) for w in weights)
        self.log_n = float(np.log(len(weights)))

    def forward(self, x):
        import torch

        logp = torch.stack([torch.log_softmax(net(x), dim=1) for net in self.nets])
        return torch.logsumexp(logp, dim=0) - self.log_n
