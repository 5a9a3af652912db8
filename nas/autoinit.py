"""AutoInit (Bingham & Miikkulainen, AAAI 2023): analytic, architecture-aware weight initialisation.

The idea
--------
Instead of a fixed rule such as He or Glorot initialisation, AutoInit follows the *mean and
variance of the signal* through the network and picks every weighted layer's weight scale so
that the layer's output has mean 0 and variance 1, whatever sits before it (activations with
non-zero mean, concatenations, skip connections, dropout, pooling ...). Nothing is trained and,
apart from the optional correlation probe described below, no data is needed.

How it works here
-----------------
1. ``torch.fx.symbolic_trace`` turns the model into a graph (the forward may loop over a fixed
   structure and use ``torch.cat``, ``+``, ``sum`` of a list, ``torch.stack``, ``flatten``,
   ``view``, ``mean`` ...). If tracing fails, a :class:`AutoInitWarning` names the reason and the
   model keeps torch's default initialisation.
2. The graph is executed once, node by node (``torch.fx.Interpreter``, no autograd), on a probe
   batch of ``input_shape`` drawn i.i.d. from N(``input_mean``, ``input_var``) with a seeded
   ``torch.Generator``. The run gives every tensor's shape (for size-weighted rules) and, when
   ``probe=True``, the two dimensionless correlation figures the analytic rules cannot know
   (see below). Weighted layers are initialised *before* their node runs, so the probe sees the
   network as AutoInit leaves it. BatchNorm running statistics, every other buffer and the global
   RNG state are restored afterwards: the pass has no side effect besides the new weights.
3. The (mean, variance) of the input is propagated through the graph in topological order with
   these rules (``(mu, nu)`` is the input mean and variance, ``m2 = nu + mu**2``):

   * ``Linear`` / ``Conv1d/2d/3d``: weights ~ N(0, s**2) with ``s**2 = 1 / (fan_in * m2)``
     (a *normal* distribution, chosen over a uniform one of equal variance because only the
     variance enters the rule), bias 0; the output is then (0, 1). With zero-mean independent
     weights ``E[y] = 0`` and ``Var[y] = fan_in * s**2 * m2 = 1`` for any input correlation.
     ``fan_in = in_channels / groups * prod(kernel)``, except that for zero-padded convolutions
     it is the *average number of kernel taps inside the input* over the output positions
     (:func:`effective_fan_in`; from the probe's shapes): a 3x3 'same' conv on a 4x4 map reads
     only 69% of its taps from the input, and ignoring that loses variance at every small-map
     layer. If ``m2`` is (almost) 0 (e.g. a conv fed only by NAS-Bench-201 ``none`` edges, whose
     output is 0 whatever its weights) the layer keeps its default init, an
     :class:`AutoInitWarning` says so, and the report's ``std`` is None.
   * Element-wise activations ``f`` (ReLU, ReLU6, LeakyReLU, PReLU, ELU, SELU, CELU, GELU, SiLU,
     Mish, Tanh, Sigmoid, Softplus, Softsign, Hardswish, Hardsigmoid, Hardtanh, LogSigmoid, and the
     ``torch.*`` / ``F.*`` / method / in-place forms, ``clamp``, ``abs``, ...):
     ``mean = E[f(X)]``, ``var = E[f(X)**2] - mean**2`` with X ~ N(mu, nu), by composite
     Gauss-Legendre quadrature on [mu - 12 sd, mu + 12 sd] with panel breaks at the kinks of the
     piecewise activations (error < 1e-9, where 100-point Gauss-Hermite is off by ~2e-3 for ReLU).
     The activation is evaluated by calling the module / function itself, so its parameters
     (negative slope, alpha, beta ...) are honoured.
   * Sums ``a + b`` (``operator.add``, ``torch.add``, ``sum`` of a list): means add; variances add
     (``+ 2 rho sqrt(nu_a nu_b)`` with ``rho`` measured on the probe, see below); ``a - b`` alike.
   * Concatenation / stack: size-weighted averages of the means and of the second moments;
     ``torch.stack(parts).sum(0)`` (or ``.mean(0)``) is treated as the sum (mean) of the parts.
   * Multiplication / division by a constant scales mean and variance (``x.mul(0.0)`` -> (0, 0));
     product of two tensors: the independent-product formula.
   * ``Dropout(p)`` in training mode: mean mu, variance ``m2 / (1 - p) - mu**2``; identity in eval.
   * BatchNorm (training mode), LayerNorm, GroupNorm, InstanceNorm: affine weight set to 1 and
     bias to 0, output (0, 1) ((0, 0) for a constant input). BatchNorm in eval mode uses its
     running statistics.
   * Average pooling, adaptive average pooling, ``mean`` over dimensions: mean mu; variance
     ``nu * r``. The paper's assumption (``probe=False``) is ``r = 1``: neighbouring activations
     strongly correlated. ``sum`` over dimensions: ``n mu`` and ``nu * r`` with ``r = n`` (the
     summed items independent, e.g. ``torch.stack(branches).sum(0)``) without the probe.
   * Max pooling over a window of k elements: the mean and variance of the maximum of k i.i.d.
     N(mu, nu) samples, by Monte Carlo (``mc_samples`` draws, seeded generator) with
     ``probe=False``.
   * Shape operations (flatten, view, reshape, permute, contiguous, getitem, split, ...) pass the
     moments through; ``size`` / ``shape`` and other non-tensor values carry none.
   * Anything else passes (mu, nu) through unchanged, with one :class:`UnknownOpWarning` naming it
     per type (listed in the report's ``unknown_ops``).

The correlation probe (``probe=True``, the default)
---------------------------------------------------
The paper's propagation assumes that summed branches are independent and says nothing exact
about pooling, whose output variance depends on how strongly neighbouring positions are
correlated. Both assumptions fail by large factors in common NAS cells: in a NAS-Bench-201 cell
of ``skip_connect`` edges node 3 is ``4 x`` the cell input, with variance 16 where independence
predicts 4, and a 2x2 average pool over a conv output loses about half of the variance where
"strongly correlated" predicts none. Such errors compound over depth. So, with ``probe=True``,
the dimensionless quantities that the rules need are measured on the probe pass, where the
network is already AutoInit-initialised upstream: the correlation coefficient ``rho`` of the two
operands of every sum / difference, the variance ratio ``r = Var[out] / Var[in]`` of every average
pooling, global mean and sum reduction, and the standardised mean and variance of max pooling
outputs. Means and variances themselves are still propagated analytically from
(``input_mean``, ``input_var``). The probe input is white noise unless ``probe_input`` is given
(e.g. a batch of real images, whose neighbouring pixels are more correlated than noise).
``probe=False`` reproduces the paper's rules (plus the zero-padding fan-in correction).

What it does not promise
------------------------
The rules hold in expectation over the weight draw. In one drawn network each layer's realised
output variance scatters around 1: with a non-zero-mean input, part of the output variance is
a per-channel offset ``mu * sum(w_k)``, one chi-square(1) figure per output channel, so the
average over C channels scatters by roughly ``sqrt(2 / C)`` times that part's share; through
positively homogeneous activations (ReLU family) the scatter compounds over depth. In the
tests, 22-node random CNNs of 64-128 channels keep every layer within [0.5, 2] in 13 of 16
drawn structures (torch's default init: variance ~1e-3 after a dozen layers), but only 2 of 16
at 12-24 channels; layers with ten or so outputs (a classifier) scatter most. Measured per-layer gain correction (LSUV, Mishkin &
Matas 2016) would remove the scatter but needs data and is a different method.

Randomness: weights are drawn with a ``torch.Generator`` seeded by ``rng_seed``; the probe input
uses a second generator derived from it; dropout during the probe runs inside
``torch.random.fork_rng`` seeded by ``rng_seed``, so the caller's global RNG state is untouched
and the result is a pure function of (model structure, arguments).
"""

from __future__ import annotations

import math
import operator
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = ["AutoInitReport", "AutoInitWarning", "UnknownOpWarning", "LayerInit", "Moments", "activation_moments",
           "autoinit", "init_model", "maxpool_moments", "INIT_CHOICES"]

INIT_CHOICES = ("autoinit", "default")
_EPS = 1e-8  # second moments below this are treated as "no signal"


class AutoInitWarning(UserWarning):
    """AutoInit could not trace the model, met an operation it has no rule for, or left a layer
    at its default initialisation."""


class UnknownOpWarning(AutoInitWarning):
    """An operation without a moment rule: its input moments were passed through unchanged."""


class Moments(NamedTuple):
    mean: float
    var: float

    @property
    def m2(self) -> float:
        return self.var + self.mean ** 2


@dataclass
class LayerInit:
    """What AutoInit did to one weighted layer (``std`` is None where the default init was kept)."""

    name: str
    kind: str
    fan_in: float
    input_mean: float
    input_var: float
    std: float | None
    note: str = ""


@dataclass
class AutoInitReport:
    traced: bool
    applied: bool
    reason: str = ""
    layers: list[LayerInit] = field(default_factory=list)
    unknown_ops: list[str] = field(default_factory=list)
    #: predicted (mean, var) of every tensor-valued fx node, by node name
    stats: dict[str, Moments] = field(default_factory=dict)
    #: predicted output (mean, var) of every called module, by qualified name (first call)
    module_stats: dict[str, Moments] = field(default_factory=dict)
    output: Moments | None = None
    probe: bool = True

    def layer(self, name: str) -> LayerInit:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no weighted layer {name!r} in the report")

    def summary(self) -> str:
        head = (f"AutoInit: traced={self.traced} applied={self.applied} layers={len(self.layers)} "
                f"unknown={self.unknown_ops or '-'}" + (f" ({self.reason})" if self.reason else ""))
        rows = [f"  {li.name:<40} {li.kind:<8} fan_in={li.fan_in:<7.1f} in=({li.input_mean:+.3f}, "
                f"{li.input_var:.3f}) std={'default' if li.std is None else f'{li.std:.4f}'}"
                + (f"  [{li.note}]" if li.note else "") for li in self.layers]
        return "\n".join([head, *rows])


# --------------------------------------------------------------------------------------------
# moment rules that need numerics
# --------------------------------------------------------------------------------------------
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_KINKS = (-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)


def activation_moments(f: Callable[[torch.Tensor], torch.Tensor], mean: float, var: float,
                       kinks: Iterable[float] = ()) -> Moments:
    """(E[f(X)], Var[f(X)]) for X ~ N(mean, var), ``f`` applied element-wise to a float64 tensor.

    Composite 16-point Gauss-Legendre on [mean - 12 sd, mean + 12 sd], panels of one sd, split
    at ``kinks`` and at the kinks of the common piecewise activations (0, +-1, +-3, +-6)."""
    sd = math.sqrt(max(var, 0.0))
    if sd < 1e-12:
        y = float(f(torch.tensor([mean], dtype=torch.float64))[0])
        return Moments(y, 0.0)
    brk = set(np.linspace(-12.0, 12.0, 25).tolist())
    brk.update((k - mean) / sd for k in (*_KINKS, *kinks) if -12.0 < (k - mean) / sd < 12.0)
    b = np.array(sorted(brk))
    lo, hi = b[:-1, None], b[1:, None]
    z = ((hi - lo) / 2 * _GL_X + (hi + lo) / 2).ravel()
    w = ((hi - lo) / 2 * _GL_W).ravel() * np.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)
    y = f(torch.from_numpy(mean + sd * z).clone()).detach().double().cpu().numpy()
    if not np.all(np.isfinite(y)):
        raise ValueError("activation is not finite on the quadrature nodes")
    m = float(w @ y)
    return Moments(m, max(float(w @ (y * y)) - m * m, 0.0))


_MAX_CACHE: dict[tuple[int, int, int], tuple[float, float]] = {}


def maxpool_moments(k: int, mean: float, var: float, mc_samples: int = 100_000, seed: int = 0) -> Moments:
    """Mean and variance of the maximum of ``k`` i.i.d. N(mean, var) samples (Monte Carlo with a
    seeded generator; the standardised figures are cached per (k, mc_samples, seed))."""
    key = (int(k), int(mc_samples), int(seed))
    if key not in _MAX_CACHE:
        g = torch.Generator().manual_seed(int(seed))
        mx = torch.randn((int(mc_samples), int(k)), generator=g, dtype=torch.float64).amax(1)
        _MAX_CACHE[key] = (float(mx.mean()), float(mx.var()))
    m, v = _MAX_CACHE[key]
    sd = math.sqrt(max(var, 0.0))
    return Moments(mean + sd * m, var * v)


# --------------------------------------------------------------------------------------------
# op tables
# --------------------------------------------------------------------------------------------
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_ACT_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
                nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Softsign, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
                nn.LogSigmoid, nn.Tanhshrink, nn.Threshold)
_NORM_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
_BN_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_PASS_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle)
_AVG_MODULES = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                nn.AdaptiveAvgPool3d)
_MAX_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                nn.AdaptiveMaxPool3d)

_ACT_FUNCS = {torch.relu, torch.relu_, F.relu, F.relu_, F.relu6, F.leaky_relu, F.leaky_relu_, F.elu, F.elu_,
              F.selu, F.selu_, torch.selu, torch.selu_, F.celu, F.celu_, F.gelu, F.silu, F.mish, F.hardswish,
              F.hardsigmoid, F.hardtanh, F.hardtanh_, F.softplus, F.softsign, F.logsigmoid, F.tanhshrink,
              torch.tanh, torch.tanh_, torch.sigmoid, torch.sigmoid_, F.tanh, F.sigmoid, torch.clamp,
              torch.clip, torch.abs, torch.exp, torch.sin, torch.cos, torch.square, F.threshold}
_ACT_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "clamp", "clamp_", "clip",
                "clamp_min", "clamp_min_", "clamp_max", "abs", "abs_", "exp", "sin", "cos", "square"}
_PASS_FUNCS = {torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.squeeze, torch.unsqueeze,
               torch.chunk, torch.split, torch.tensor_split, torch.unbind, torch.narrow, torch.clone,
               torch.roll, torch.flip, torch.movedim, torch.t, operator.getitem, F.interpolate,
               F.pixel_shuffle, F.pixel_unshuffle, torch.select, torch.detach}
_PASS_METHODS = {"view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "contiguous", "permute",
                 "transpose", "t", "squeeze", "unsqueeze", "expand", "expand_as", "repeat", "clone", "detach",
                 "to", "float", "double", "half", "bfloat16", "type", "type_as", "chunk", "split",
                 "tensor_split", "unbind", "narrow", "select", "roll", "flip", "movedim", "cpu", "cuda",
                 "__getitem__", "requires_grad_"}
_CONST_FUNCS = {torch.zeros, torch.ones, torch.full, torch.zeros_like, torch.ones_like, torch.full_like,
                torch.arange, torch.linspace, torch.eye, torch.tensor, torch.empty}
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__radd__", "__iadd__"}
_SUB = {operator.sub, operator.isub, torch.sub, torch.subtract, "sub", "sub_", "subtract", "__sub__"}
_MUL = {operator.mul, operator.imul, torch.mul, torch.multiply, "mul", "mul_", "multiply", "__mul__", "__rmul__"}
_DIV = {operator.truediv, operator.itruediv, torch.div, torch.true_divide, "div", "div_", "true_divide",
        "__truediv__"}
_NEG = {operator.neg, torch.neg, "neg", "neg_", "__neg__"}
_CAT = {torch.cat, torch.concat, torch.concatenate, torch.stack, torch.hstack, torch.vstack}
_MEAN = {torch.mean, "mean", F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
         F.adaptive_avg_pool2d, F.adaptive_avg_pool3d}
_SUM = {torch.sum, "sum"}
_MAXPOOL = {F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
            F.adaptive_max_pool3d}
_DROPOUT_FUNCS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d}


def _op_name(node: fx.Node, module: nn.Module | None) -> str:
    if module is not None:
        return type(module).__name__
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    t = node.target
    return f"{getattr(t, '__module__', '') or ''}.{getattr(t, '__name__', repr(t))}".lstrip(".")


def _is_float_tensor(v: Any) -> bool:
    return isinstance(v, torch.Tensor) and v.is_floating_point()


def _tensor_moments(t: torch.Tensor) -> Moments:
    t = t.detach().double()
    if t.numel() == 0:
        return Moments(0.0, 0.0)
    return Moments(float(t.mean()), float(t.var(unbiased=False)) if t.numel() > 1 else 0.0)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two probe tensors over all (broadcast) elements; 0 if degenerate."""
    try:
        a, b = torch.broadcast_tensors(a.detach().double(), b.detach().double())
    except RuntimeError:
        return 0.0
    a = a.reshape(-1) - a.mean()
    b = b.reshape(-1) - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 1e-30 else 0.0


def _var_ratio(out: torch.Tensor, inp: torch.Tensor) -> float | None:
    vi = float(inp.detach().double().var(unbiased=False))
    if not math.isfinite(vi) or vi < 1e-30:
        return None
    return float(out.detach().double().var(unbiased=False)) / vi


def _prod(xs: Iterable[int]) -> int:
    return int(math.prod(int(x) for x in xs))


def _taps(length: int, k: int, stride: int, pad_left: int, dilation: int, out_len: int) -> float:
    """Average number of the ``k`` kernel taps that fall inside an input of ``length`` (the rest
    read zero padding), over the ``out_len`` output positions."""
    if out_len <= 0:
        return float(k)
    inside = 0
    for o in range(out_len):
        start = o * stride - pad_left
        inside += sum(1 for t in range(k) if 0 <= start + t * dilation < length)
    return inside / out_len


def effective_fan_in(module: nn.Module, in_shape: Any = None) -> float:
    """``in_channels / groups * prod(kernel)`` of a Linear/Conv, corrected for zero padding.

    Output positions near the border of a zero-padded convolution see fewer real inputs than the
    kernel has taps: a 3x3 'same' conv on a 4x4 map reads, on average, only 69% of its taps from
    the input. Ignoring that shrinks the variance by this factor at every such layer, which
    compounds over depth. Given the input shape (from the probe pass), the average number of
    in-bounds taps is used instead of the kernel size (only for ``padding_mode='zeros'``)."""
    w = module.weight
    fan_in = float(_prod(w.shape[1:]))
    if not isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) or in_shape is None \
            or module.padding_mode != "zeros":
        return fan_in
    nd = w.dim() - 2
    spatial = list(in_shape)[-nd:]
    ks, st, dil = module.kernel_size, module.stride, module.dilation
    if isinstance(module.padding, str):
        pads = [0] * nd if module.padding == "valid" else [dil[d] * (ks[d] - 1) // 2 for d in range(nd)]
    else:
        pads = list(module.padding)
    taps = 1.0
    for d in range(nd):
        if isinstance(module.padding, str) and module.padding == "same":
            out_len = spatial[d]
        else:
            out_len = (spatial[d] + 2 * pads[d] - dil[d] * (ks[d] - 1) - 1) // st[d] + 1
        taps *= _taps(spatial[d], ks[d], st[d], pads[d], dil[d], out_len)
    return float(w.shape[1]) * taps


# --------------------------------------------------------------------------------------------
# the propagating interpreter
# --------------------------------------------------------------------------------------------
class _Propagator(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, input_moments: Moments, probe: bool, mc_samples: int,
                 rng_seed: int, generator: torch.Generator, training: dict[str, bool]):
        super().__init__(gm, garbage_collect_values=True)
        self.input_moments = input_moments
        self.probe = probe
        self.mc_samples = mc_samples
        self.rng_seed = rng_seed
        self.gen = generator
        self.training = training
        self.stats: dict[fx.Node, Moments | None] = {}
        self.layers: list[LayerInit] = []
        self.done_layers: set[str] = set()
        self.assigned: dict[str, float] = {}  # layer name -> std set by AutoInit
        self.stack_rho: dict[fx.Node, list[list[float]]] = {}
        self.unknown: list[str] = []
        self.module_stats: dict[str, Moments] = {}

    # ---- helpers -----------------------------------------------------------------------
    def warn_unknown(self, name: str, detail: str = "") -> None:
        if name not in self.unknown:
            self.unknown.append(name)
            warnings.warn(f"AutoInit: no rule for {name}{detail}; passing (mean, var) through unchanged",
                          UnknownOpWarning, stacklevel=4)

    def tstat(self, a: Any) -> Moments | None:
        return self.stats.get(a) if isinstance(a, fx.Node) else None

    def first_tensor(self, node: fx.Node) -> tuple[Moments | None, Any]:
        """Stats and probe value of the first tracked tensor among the node's inputs."""
        found: list[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), lambda a: found.append(a) or a)
        for a in found:
            s = self.stats.get(a)
            if s is not None:
                return s, self.env.get(a)
        return None, None

    # ---- execution ---------------------------------------------------------------------
    def run_node(self, n: fx.Node) -> Any:
        with self._set_current_node(n):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            module = self.module.get_submodule(n.target) if n.op == "call_module" else None
            if isinstance(module, _WEIGHTED):
                self.init_weighted(n, module, args[0] if args else None)
            if isinstance(module, (*_BN_MODULES, *_NORM_MODULES)):
                with torch.no_grad():
                    if getattr(module, "weight", None) is not None:
                        module.weight.fill_(1.0)
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
            pre_rho = None
            if self.probe and n.op in ("call_function", "call_method") and n.target in (_ADD | _SUB) \
                    and len(args) >= 2 and _is_float_tensor(args[0]) and _is_float_tensor(args[1]):
                pre_rho = _corr(args[0], args[1])  # before an in-place add_ overwrites an operand
            if n.op == "call_function" and n.target is torch.stack and args and isinstance(args[0], (list, tuple)):
                vals = list(args[0])  # correlations between the stacked parts, for a later sum/mean over them
                self.stack_rho[n] = [[_corr(a, b) if self.probe and _is_float_tensor(a) and _is_float_tensor(b)
                                      else 0.0 for b in vals] for a in vals]
            in_val = args[0] if args else None
            if self.probe and _is_float_tensor(in_val) and (
                    isinstance(module, (*_AVG_MODULES, *_MAX_MODULES)) or n.target in (_MEAN | _SUM | _MAXPOOL)):
                in_val = in_val.detach().clone()
            result = getattr(self, n.op)(n.target, args, kwargs)
            try:
                st = self.rule(n, module, args, kwargs, result, pre_rho, in_val)
            except Exception as exc:  # a rule that cannot apply: say so, keep going
                st, _ = self.first_tensor(n)
                self.warn_unknown(_op_name(n, module), f" (its rule failed: {exc})")
            if st is not None and not (math.isfinite(st.mean) and math.isfinite(st.var)):
                st = None
            self.stats[n] = st
            if module is not None and st is not None and n.target not in self.module_stats:
                self.module_stats[str(n.target)] = st
            return result

    def init_weighted(self, n: fx.Node, module: nn.Module, x: Any) -> None:
        name = str(n.target)
        if name in self.done_layers:
            return
        self.done_layers.add(name)
        st = self.tstat(n.args[0]) if n.args else None
        fan_in = effective_fan_in(module, x.shape if isinstance(x, torch.Tensor) else None)
        kind = type(module).__name__
        if st is None:
            self.layers.append(LayerInit(name, kind, fan_in, math.nan, math.nan, None,
                                         "input moments unknown; default init kept"))
            warnings.warn(f"AutoInit: input moments of {name} ({kind}) unknown; default init kept",
                          AutoInitWarning, stacklevel=4)
            return
        if st.m2 < _EPS:
            self.layers.append(LayerInit(name, kind, fan_in, st.mean, st.var, None,
                                         "input is (almost) constant zero; default init kept"))
            warnings.warn(f"AutoInit: the input of {name} ({kind}) has second moment {st.m2:.2e} "
                          f"(e.g. after a 'none' op); default init kept", AutoInitWarning, stacklevel=4)
            return
        std = 1.0 / math.sqrt(fan_in * st.m2)
        with torch.no_grad():
            w = torch.empty(module.weight.shape, dtype=torch.float32).normal_(0.0, std, generator=self.gen)
            module.weight.copy_(w.to(module.weight.dtype))
            if module.bias is not None:
                module.bias.zero_()
        self.assigned[name] = std
        self.layers.append(LayerInit(name, kind, fan_in, st.mean, st.var, std))

    # ---- the rules -----------------------------------------------------------------------
    def rule(self, n: fx.Node, module: nn.Module | None, args: tuple, kwargs: dict, result: Any,
             pre_rho: float | None, in_val: Any) -> Moments | None:
        if n.op == "placeholder":
            return self.input_moments if _is_float_tensor(result) else None
        if n.op == "output":
            return None
        if n.op == "get_attr":
            return _tensor_moments(result) if _is_float_tensor(result) else None
        produces_tensor = _is_float_tensor(result) or (
            isinstance(result, (tuple, list)) and result and all(_is_float_tensor(r) for r in result))
        if not produces_tensor:
            return None  # sizes, shapes, integers, masks: no moments
        target = n.target
        if module is not None:
            return self.module_rule(n, module, result, in_val)
        s0 = self.tstat(n.args[0]) if n.args else None
        if target in _PASS_FUNCS or (n.op == "call_method" and target in _PASS_METHODS):
            if s0 is None:
                s0, _ = self.first_tensor(n)
            return s0
        if target in _CONST_FUNCS:
            return _tensor_moments(result)
        if target in _ADD or target in _SUB:
            return self.add_rule(n, args, kwargs, pre_rho, sign=-1.0 if target in _SUB else 1.0)
        if target in _MUL:
            return self.mul_rule(n, args)
        if target in _DIV:
            sa = s0
            sb = self.tstat(n.args[1]) if len(n.args) > 1 else None
            c = args[1] if len(args) > 1 else None
            if sa is not None and sb is None and (isinstance(c, (int, float)) or (
                    isinstance(c, torch.Tensor) and c.numel() == 1)) and float(c) != 0.0:
                return Moments(sa.mean / float(c), sa.var / float(c) ** 2)
        if target in _NEG and s0 is not None:
            return Moments(-s0.mean, s0.var)
        if target in _CAT:
            return self.cat_rule(n, args)
        if target in _DROPOUT_FUNCS and s0 is not None:
            p = float(kwargs.get("p", args[1] if len(args) > 1 else 0.5))
            training = bool(kwargs.get("training", args[2] if len(args) > 2 else True))
            return self.dropout(s0, p if training else 0.0)
        if target is F.pad and s0 is not None:
            mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
            value = kwargs.get("value", args[3] if len(args) > 3 else None) or 0.0
            if mode == "constant" and float(value) == 0.0:
                frac = args[0].numel() / max(result.numel(), 1)
                return self.mix([(frac, s0), (1.0 - frac, Moments(0.0, 0.0))])
            return s0
        if target in (_MEAN | _SUM) and s0 is not None:
            over_stack = self.stack_reduction(n, args, kwargs, mean=target in _MEAN)
            if over_stack is not None:
                return over_stack
            return self.mean_rule(s0, in_val, result, reduce_sum=target in _SUM)
        if target in _MAXPOOL and s0 is not None:
            ks = kwargs.get("kernel_size", args[1] if len(args) > 1 and "adaptive" not in target.__name__ else None)
            return self.max_rule(s0, in_val, result, ks)
        if (target in _ACT_FUNCS or (n.op == "call_method" and target in _ACT_METHODS)) and s0 is not None:
            if any(isinstance(a, fx.Node) for a in [*n.args[1:], *n.kwargs.values()]):
                self.warn_unknown(_op_name(n, None), " with tensor-valued parameters")
                return s0
            rest, kw = args[1:], {k: v for k, v in kwargs.items() if k != "inplace"}
            if n.op == "call_method":
                fn = lambda t: getattr(t, target)(*rest, **kw)  # noqa: E731
            else:
                fn = lambda t: target(t, *rest, **kw)  # noqa: E731
            return activation_moments(fn, s0.mean, s0.var, self.kinks(rest, kw))
        st, _ = self.first_tensor(n)
        if st is None:
            self.warn_unknown(_op_name(n, None), " (no tracked input; using the probe's moments)")
            return _tensor_moments(result if isinstance(result, torch.Tensor) else result[0])
        self.warn_unknown(_op_name(n, None))
        return st

    @staticmethod
    def kinks(rest: Iterable[Any], kw: dict) -> list[float]:
        return [float(v) for v in [*rest, *kw.values()] if isinstance(v, (int, float)) and not isinstance(v, bool)]

    def module_rule(self, n: fx.Node, module: nn.Module, result: Any, in_val: Any) -> Moments | None:
        s0 = self.tstat(n.args[0]) if n.args else None
        name = str(n.target)
        training = self.training.get(name, module.training)
        if isinstance(module, _WEIGHTED):
            return self.weighted_output(module, name, s0, in_val.shape if isinstance(in_val, torch.Tensor) else None)
        if s0 is None:
            st, _ = self.first_tensor(n)
            return st
        if isinstance(module, _PASS_MODULES):
            return s0
        if isinstance(module, _ACT_MODULES) or _elementwise(module):
            if isinstance(module, nn.PReLU):
                slopes = module.weight.detach().double().cpu().reshape(-1)
                ms = [activation_moments(lambda t, a=a: F.prelu(t, a.reshape(1)), s0.mean, s0.var)
                      for a in slopes]
                return self.mix([(1.0 / len(ms), m) for m in ms])
            kinks = [float(getattr(module, a)) for a in ("min_val", "max_val", "threshold")
                     if isinstance(getattr(module, a, None), (int, float))]
            return activation_moments(module, s0.mean, s0.var, kinks)
        if isinstance(module, _BN_MODULES):
            if s0.var < _EPS:
                return Moments(0.0, 0.0)
            if training or not module.track_running_stats or module.running_mean is None:
                return Moments(0.0, 1.0)
            rm = module.running_mean.detach().double().cpu()
            rv = module.running_var.detach().double().cpu() + module.eps
            means = (s0.mean - rm) / rv.sqrt()
            vars_ = s0.var / rv
            m = float(means.mean())
            return Moments(m, float((vars_ + means ** 2).mean()) - m * m)
        if isinstance(module, _NORM_MODULES):
            return Moments(0.0, 0.0) if s0.var < _EPS else Moments(0.0, 1.0)
        if isinstance(module, _DROPOUT_MODULES):
            return self.dropout(s0, module.p if training else 0.0)
        if isinstance(module, _AVG_MODULES):
            return self.mean_rule(s0, in_val, result, reduce_sum=False)
        if isinstance(module, _MAX_MODULES):
            return self.max_rule(s0, in_val, result, getattr(module, "kernel_size", None), module)
        self.warn_unknown(type(module).__name__)
        return s0

    def weighted_output(self, module: nn.Module, name: str, s0: Moments | None, in_shape: Any = None) -> Moments | None:
        """Output moments of a Linear/Conv whose weights are now set: ``(0, fan_in s**2 m2)`` where
        AutoInit drew them (exactly (0, 1) at the call it was initialised for; a shared layer
        called again may see other input moments), else from the realised weights and bias
        (zero-mean weight approximation)."""
        if s0 is None:
            return None
        fan_in = effective_fan_in(module, in_shape)
        if name in self.assigned:
            return Moments(0.0, fan_in * self.assigned[name] ** 2 * s0.m2)
        w = module.weight.detach().double()
        b = module.bias.detach().double() if module.bias is not None else None
        var = fan_in * float((w * w).mean()) * s0.m2
        bm = float(b.mean()) if b is not None else 0.0
        bv = float(b.var(unbiased=False)) if b is not None and b.numel() > 1 else 0.0
        return Moments(bm, var + bv)

    @staticmethod
    def dropout(s: Moments, p: float) -> Moments:
        if p <= 0.0:
            return s
        if p >= 1.0:
            return Moments(0.0, 0.0)
        return Moments(s.mean, max(s.m2 / (1.0 - p) - s.mean ** 2, 0.0))

    @staticmethod
    def mix(parts: list[tuple[float, Moments]]) -> Moments:
        tot = sum(w for w, _ in parts) or 1.0
        m = sum(w * s.mean for w, s in parts) / tot
        m2 = sum(w * s.m2 for w, s in parts) / tot
        return Moments(m, max(m2 - m * m, 0.0))

    def add_rule(self, n: fx.Node, args: tuple, kwargs: dict, pre_rho: float | None, sign: float) -> Moments | None:
        a, b = (n.args + (None, None))[:2]
        alpha = float(kwargs.get("alpha", 1.0)) * sign
        sa, sb = self.tstat(a), self.tstat(b)
        va, vb = args[0], (args[1] if len(args) > 1 else None)
        if sa is not None and sb is not None:
            rho = pre_rho if pre_rho is not None else 0.0
            var = sa.var + alpha ** 2 * sb.var + 2 * alpha * rho * math.sqrt(sa.var * sb.var)
            return Moments(sa.mean + alpha * sb.mean, max(var, 0.0))
        if sa is not None and vb is None:
            return sa
        if sa is not None:
            return Moments(sa.mean + alpha * float(vb), sa.var)
        if sb is not None:
            return Moments(float(va) + alpha * sb.mean, alpha ** 2 * sb.var)
        return None

    def mul_rule(self, n: fx.Node, args: tuple) -> Moments | None:
        a, b = (n.args + (None, None))[:2]
        sa, sb = self.tstat(a), self.tstat(b)
        if sa is not None and sb is not None:
            m = sa.mean * sb.mean
            return Moments(m, max(sa.m2 * sb.m2 - m * m, 0.0))
        s, c = (sa, args[1]) if sa is not None else (sb, args[0])
        if s is None:
            return None
        if isinstance(c, torch.Tensor):
            if c.numel() != 1:
                return self.mul_rule_tensor_const(s, c)
            c = float(c)
        c = float(c)
        return Moments(c * s.mean, c * c * s.var)

    @staticmethod
    def mul_rule_tensor_const(s: Moments, c: torch.Tensor) -> Moments:
        cm = _tensor_moments(c)
        m = s.mean * cm.mean
        return Moments(m, max(s.m2 * cm.m2 - m * m, 0.0))

    def cat_rule(self, n: fx.Node, args: tuple) -> Moments | None:
        nodes = n.args[0] if n.args else n.kwargs.get("tensors")
        vals = args[0] if args else None
        if not isinstance(nodes, (list, tuple)) or vals is None:
            return None
        parts = []
        for node, val in zip(nodes, vals):
            s = self.tstat(node)
            if s is None:
                if not _is_float_tensor(val):
                    return None
                s = _tensor_moments(val)
            parts.append((float(val.numel()), s))
        return self.mix(parts) if parts else None

    def stack_reduction(self, n: fx.Node, args: tuple, kwargs: dict, mean: bool) -> Moments | None:
        """``torch.stack(parts, d).sum(d)`` (or ``.mean(d)``) is the sum (mean) of the parts: combine
        their moments like ``a + b + ...`` (the stacked tensor's own moments would count the spread
        between the parts' means as variance)."""
        src = n.args[0] if n.args else None
        if not isinstance(src, fx.Node) or src not in self.stack_rho or not isinstance(src.args[0], (list, tuple)):
            return None
        parts = [self.tstat(p) for p in src.args[0]]
        if not parts or any(p is None for p in parts):
            return None
        sdim = src.kwargs.get("dim", src.args[1] if len(src.args) > 1 else 0)
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        ndim = args[0].dim() if isinstance(args[0], torch.Tensor) else None
        if ndim is None or dim is None or isinstance(sdim, fx.Node):
            return None
        dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
        if len(dims) != 1 or int(dims[0]) % ndim != int(sdim) % ndim:
            return None
        rho = self.stack_rho[src]
        m = sum(p.mean for p in parts)
        v = sum(rho[i][j] * math.sqrt(parts[i].var * parts[j].var) if i != j else parts[i].var
                for i in range(len(parts)) for j in range(len(parts)))
        k = float(len(parts)) if mean else 1.0
        return Moments(m / k, max(v, 0.0) / k ** 2)

    def mean_rule(self, s: Moments, in_val: Any, out: Any, reduce_sum: bool) -> Moments:
        n = max(in_val.numel() / max(out.numel(), 1), 1.0) if isinstance(in_val, torch.Tensor) \
            and isinstance(out, torch.Tensor) else 1.0
        ratio = _var_ratio(out, in_val) if self.probe and isinstance(in_val, torch.Tensor) else None
        if reduce_sum:
            return Moments(n * s.mean, s.var * (ratio if ratio is not None else n))
        return Moments(s.mean, s.var * (ratio if ratio is not None else 1.0))

    def max_rule(self, s: Moments, in_val: Any, out: Any, ks: Any, module: nn.Module | None = None) -> Moments:
        if self.probe and isinstance(in_val, torch.Tensor) and isinstance(out, torch.Tensor):
            x = in_val.detach().double()
            mi, si = float(x.mean()), float(x.std(unbiased=False))
            if si > 1e-15:
                y = (out.detach().double() - mi) / si
                return Moments(s.mean + math.sqrt(s.var) * float(y.mean()), s.var * float(y.var(unbiased=False)))
        if ks is None or isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
            k = round(in_val.numel() / max(out.numel(), 1)) if isinstance(in_val, torch.Tensor) else 1
        else:
            dims = out.dim() - 2 if isinstance(out, torch.Tensor) else 1
            k = _prod(ks) if isinstance(ks, (tuple, list)) else int(ks) ** max(dims, 1)
        return maxpool_moments(max(int(k), 1), s.mean, s.var, self.mc_samples, self.rng_seed)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def _first_float(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in [*model.parameters(), *model.buffers()]:
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.float32


def _elementwise(module: nn.Module) -> bool:
    """Modules that declare ``elementwise = True`` (evolved activations, :mod:`nas.meta.expr`)
    are one element-wise activation to AutoInit: a leaf of the trace, moments by quadrature."""
    return bool(getattr(module, "elementwise", False))


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _elementwise(m) or super().is_leaf_module(m, module_qualified_name)


def autoinit(model: nn.Module, input_shape: tuple[int, ...], input_mean: float = 0.0, input_var: float = 1.0,
             mc_samples: int = 100_000, rng_seed: int = 0, probe: bool = True, probe_batch: int = 16,
             probe_input: torch.Tensor | None = None) -> AutoInitReport:
    """Initialise ``model`` in place with AutoInit (see the module docstring) and say what was done.

    ``input_shape`` is one example's shape, without the batch dimension (e.g. ``(1, 8, 8)``);
    ``input_mean`` / ``input_var`` are the moments of the input elements. ``probe`` measures the
    branch and pooling correlations on a probe batch (``probe_batch`` white-noise inputs, or
    ``probe_input`` with its batch dimension); ``probe=False`` uses the paper's assumptions.
    Never raises for an untraceable model: it warns and keeps the default init."""
    if input_var < 0:
        raise ValueError(f"input_var must be >= 0, got {input_var}")
    report = AutoInitReport(traced=False, applied=False, probe=probe)
    # torch.fx traces *into* the root module, so a bare Conv/Linear/BN... is wrapped to stay a leaf
    wrapped = isinstance(model, (*_WEIGHTED, *_BN_MODULES, *_NORM_MODULES, *_ACT_MODULES, *_DROPOUT_MODULES,
                                 *_AVG_MODULES, *_MAX_MODULES, *_PASS_MODULES)) or _elementwise(model)
    root = nn.Sequential(model) if wrapped else model
    try:
        gm = fx.GraphModule(root, _Tracer().trace(root))
    except Exception as exc:  # torch.fx raises many kinds (TraceError, TypeError, ...)
        report.reason = f"torch.fx could not trace {type(model).__name__}: {type(exc).__name__}: {exc}"
        warnings.warn(f"AutoInit: {report.reason}; the default initialisation is kept", AutoInitWarning,
                      stacklevel=2)
        return report
    report.traced = True
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        report.reason = f"the model takes {len(placeholders)} inputs; AutoInit supports one"
        warnings.warn(f"AutoInit: {report.reason}; the default initialisation is kept", AutoInitWarning,
                      stacklevel=2)
        return report

    device, dtype = _first_float(model)
    if probe_input is None:
        pg = torch.Generator().manual_seed(int(rng_seed) * 7919 + 1)
        x = torch.randn((int(probe_batch), *map(int, input_shape)), generator=pg, dtype=torch.float64)
        x = x * math.sqrt(input_var) + input_mean
    else:
        x = probe_input.detach()
    x = x.to(device=device, dtype=dtype)

    training = {name: m.training for name, m in root.named_modules()}
    saved_params = {k: v.detach().clone() for k, v in model.named_parameters()}
    saved_bufs = {k: v.detach().clone() for k, v in model.named_buffers()}
    gen = torch.Generator().manual_seed(int(rng_seed))
    prop = _Propagator(gm, Moments(float(input_mean), float(input_var)), probe, mc_samples, rng_seed, gen, training)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng_seed))
            prop.run(x)
    except Exception as exc:
        with torch.no_grad():
            for k, v in model.named_parameters():
                v.copy_(saved_params[k])
        report.reason = f"the probe pass over input shape {tuple(input_shape)} failed: {type(exc).__name__}: {exc}"
        warnings.warn(f"AutoInit: {report.reason}; the default initialisation is kept", AutoInitWarning,
                      stacklevel=2)
        return report
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(saved_bufs[k])
    report.applied = True
    if wrapped:  # report the root's own qualified name, ""
        for li in prop.layers:
            li.name = ""
        prop.module_stats = {"": v for v in prop.module_stats.values()}
    report.layers = prop.layers
    report.unknown_ops = list(prop.unknown)
    report.stats = {n.name: s for n, s in prop.stats.items() if s is not None}
    report.module_stats = dict(prop.module_stats)
    out = next(n for n in gm.graph.nodes if n.op == "output")
    first = out.args[0]
    while isinstance(first, (tuple, list)) and first:
        first = first[0]
    if isinstance(first, dict) and first:
        first = next(iter(first.values()))
    report.output = prop.stats.get(first) if isinstance(first, fx.Node) else None
    return report


def init_model(model: nn.Module, how: str, input_shape: tuple[int, ...], **kwargs: Any) -> AutoInitReport | None:
    """Initialise a freshly built model as the config's ``evaluation.init`` says.

    ``"default"`` keeps torch's initialisation (returns None); ``"autoinit"`` runs :func:`autoinit`
    with ``input_shape`` and ``kwargs`` (``input_mean``, ``input_var``, ``rng_seed`` ...)."""
    if how == "default":
        return None
    if how == "autoinit":
        return autoinit(model, input_shape, **kwargs)
    raise ValueError(f"unknown init {how!r}; expected one of {', '.join(INIT_CHOICES)}")
