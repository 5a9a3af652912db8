"""Activation functions as expression trees (PANGAEA, Bingham & Miikkulainen 2022).

A tree is a plain JSON value, so it hashes, serialises and travels to Dask workers as is:

- ``{"op": "x"}``: the input;
- ``{"op": U, "args": [a]}`` with ``U`` a unary operator (:data:`UNARY`);
- ``{"op": B, "args": [a, b]}`` with ``B`` a binary operator (:data:`BINARY`);
- any node may carry ``"scale": s``, a learnable scalar (initialised to ``s``) multiplying its
  output (PANGAEA's parametric activations).

The text form is what ``describe`` prints and what ``parse`` reads back, e.g.
``x * sigmoid(param(1.0, x))`` or ``max(x, tanh(x))``; users may write an activation in
``params.yaml`` in that form (``space.activation``). Evaluation exists twice, in torch (training)
and NumPy (tests, checks); both take the operators from one table.
"""

from __future__ import annotations

import ast
import math
from typing import Any, Callable

import numpy as np
import torch
from scipy.special import erf as _np_erf

Tree = dict


def _np_sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _np_softplus(x):
    return np.logaddexp(0.0, x)


# name -> (torch function, NumPy function)
UNARY: dict[str, tuple[Callable, Callable]] = {
    "neg": (torch.neg, np.negative),
    "abs": (torch.abs, np.abs),
    "square": (torch.square, np.square),
    "exp": (torch.exp, np.exp),
    "sigmoid": (torch.sigmoid, _np_sigmoid),
    "tanh": (torch.tanh, np.tanh),
    "sin": (torch.sin, np.sin),
    "erf": (torch.erf, _np_erf),
    "relu": (torch.relu, lambda x: np.maximum(x, 0.0)),
    "softplus": (torch.nn.functional.softplus, _np_softplus),
}
BINARY: dict[str, tuple[Callable, Callable]] = {
    "add": (torch.add, np.add),
    "sub": (torch.sub, np.subtract),
    "mul": (torch.mul, np.multiply),
    "max": (torch.maximum, np.maximum),
    "min": (torch.minimum, np.minimum),
}
_INFIX = {"add": "+", "sub": "-", "mul": "*"}
_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2}


class TreeError(ValueError):
    """A malformed, unknown or degenerate activation tree."""


# ------------------------------------------------------------------------------------------
# structure
# ------------------------------------------------------------------------------------------
def validate(tree: Any, unary=UNARY, binary=BINARY) -> None:
    """Raise :class:`TreeError` unless ``tree`` is a well-formed tree over the given operators."""
    if not isinstance(tree, dict) or "op" not in tree:
        raise TreeError(f"a tree node is a dict with 'op', got {tree!r}")
    extra = set(tree) - {"op", "args", "scale"}
    if extra:
        raise TreeError(f"unknown key(s) {sorted(extra)} in tree node {tree!r}")
    if "scale" in tree and not (isinstance(tree["scale"], (int, float)) and math.isfinite(tree["scale"])):
        raise TreeError(f"scale must be a finite number, got {tree['scale']!r}")
    op, args = tree["op"], tree.get("args", [])
    if op == "x":
        if args:
            raise TreeError("the input 'x' takes no arguments")
        return
    arity = 1 if op in unary else 2 if op in binary else None
    if arity is None:
        raise TreeError(f"unknown operator {op!r}; unary: {', '.join(unary)}; binary: {', '.join(binary)}")
    if not isinstance(args, list) or len(args) != arity:
        raise TreeError(f"operator {op!r} takes {arity} argument(s), got {args!r}")
    for a in args:
        validate(a, unary, binary)


def nodes(tree: Tree) -> list[tuple[tuple[int, ...], Tree]]:
    """Every ``(path, node)``, pre-order; a path is the argument indices from the root."""
    out = [((), tree)]
    for i, a in enumerate(tree.get("args", [])):
        out += [((i, *p), n) for p, n in nodes(a)]
    return out


def size(tree: Tree) -> int:
    return len(nodes(tree))


def depth(tree: Tree) -> int:
    return 1 + max((depth(a) for a in tree.get("args", [])), default=0)


def replace(tree: Tree, path: tuple[int, ...], new: Tree) -> Tree:
    """A copy of ``tree`` with the node at ``path`` replaced by ``new``."""
    if not path:
        return new
    args = list(tree["args"])
    args[path[0]] = replace(args[path[0]], path[1:], new)
    return {**tree, "args": args}


# ------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------
def evaluate_torch(tree: Tree, x: torch.Tensor, scales: list[torch.Tensor] | None = None) -> torch.Tensor:
    """The activation applied to ``x``. ``scales`` (one tensor per scaled node, pre-order)
    replaces the trees' initial scales, so they can be learnt."""
    it = iter(scales) if scales is not None else None

    def go(n: Tree) -> torch.Tensor:
        op = n["op"]
        s = (next(it) if it is not None else n["scale"]) if "scale" in n else None
        if op == "x":
            y = x
        elif op in UNARY:
            y = UNARY[op][0](go(n["args"][0]))
        else:
            a = go(n["args"][0])
            y = BINARY[op][0](a, go(n["args"][1]))
        return y * s if s is not None else y

    return go(tree)


def evaluate_numpy(tree: Tree, x: np.ndarray) -> np.ndarray:
    """The same function in NumPy (float64), from the same operator table."""
    x = np.asarray(x, dtype=np.float64)

    def go(n: Tree) -> np.ndarray:
        op = n["op"]
        if op == "x":
            y = x
        elif op in UNARY:
            y = UNARY[op][1](go(n["args"][0]))
        else:
            y = BINARY[op][1](go(n["args"][0]), go(n["args"][1]))
        return y * float(n["scale"]) if "scale" in n else y

    with np.errstate(all="ignore"):
        return go(tree)


PROBE = np.concatenate([np.linspace(-6.0, 6.0, 241), np.random.default_rng(0).standard_normal(256) * 2.0])
"""Inputs every candidate activation is checked on before any training."""


GROWTH_LIMIT = 1000.0


def degenerate(tree: Tree) -> str | None:
    """Why ``tree`` is not worth training (non-finite, constant or exploding on :data:`PROBE`, or
    no gradient anywhere), else None. PANGAEA discards degenerate functions before evaluating
    them; the growth limit is ours (functions such as ``square(x) * exp(x)`` made every training
    diverge in the first epoch)."""
    with torch.enable_grad():  # callers may build networks under no_grad (extracting a subnet)
        x = torch.tensor(PROBE, dtype=torch.float64, requires_grad=True)
        y = evaluate_torch(tree, x)
        g = torch.autograd.grad(y.sum(), x, allow_unused=True)[0] if y.requires_grad else None
    if not torch.isfinite(y).all():
        return "it is not finite on the probe inputs (e.g. exp of exp overflows)"
    if float(y.detach()[: 241].abs().max()) > GROWTH_LIMIT:
        return (f"it grows too fast (|f(x)| > {GROWTH_LIMIT:g} for some |x| <= 6, e.g. square(x) * exp(x)): "
                "training diverges")
    if float(y.detach().std()) < 1e-6:
        return "it is constant on the probe inputs"
    if g is None:
        return "it does not depend on x"
    if not torch.isfinite(g).all():
        return "its gradient is not finite on the probe inputs"
    if float(g.abs().max()) < 1e-8:
        return "its gradient is zero on every probe input"
    return None


class EvolvedActivation(torch.nn.Module):
    """An expression tree as an element-wise torch activation; each ``scale`` is a learnable
    parameter. ``elementwise = True`` tells AutoInit to treat it as one activation (it computes
    the output moments by quadrature, calling this module)."""

    elementwise = True

    def __init__(self, tree: Tree):
        super().__init__()
        validate(tree)
        self.tree = tree
        self.scales = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.tensor(float(n["scale"]))) for _, n in nodes(tree) if "scale" in n])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return evaluate_torch(self.tree, x, [s.to(x.dtype) for s in self.scales] if len(self.scales) else None)

    def extra_repr(self) -> str:
        return to_text(self.tree)


# ------------------------------------------------------------------------------------------
# text form
# ------------------------------------------------------------------------------------------
def _num(v: float) -> str:
    return repr(round(float(v), 4))


def to_text(tree: Tree) -> str:
    """The infix text form (``parse(to_text(t)) == t``)."""

    def go(n: Tree, parent_prec: int = 0, right: bool = False) -> str:
        op = n["op"]
        if op == "x":
            body, prec = "x", 3
        elif op in UNARY:
            body, prec = f"{op}({go(n['args'][0])})", 3
        elif op in _INFIX:
            p = _PRECEDENCE[op]
            body = f"{go(n['args'][0], p)} {_INFIX[op]} {go(n['args'][1], p, right=True)}"
            prec = p
        else:
            body, prec = f"{op}({go(n['args'][0])}, {go(n['args'][1])})", 3
        if "scale" in n:
            return f"param({_num(n['scale'])}, {body})"
        if prec < parent_prec or (right and prec == parent_prec):
            return f"({body})"
        return body

    return go(tree)


_AST_BIN = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}


def parse(text: str) -> Tree:
    """A tree from its text form: ``x``, the unary operators as functions (``tanh(x)``),
    ``max(a, b)``, ``min(a, b)``, ``a + b``, ``a - b``, ``a * b``, unary minus, and
    ``param(init, expr)`` for a learnable scale. Read with Python's ``ast``, never evaluated."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise TreeError(f"cannot read activation {text!r}: {exc.msg}") from None

    def number(n: ast.AST) -> float:
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -number(n.operand)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool):
            return float(n.value)
        raise TreeError(f"param(init, expr) needs a number as init in {text!r}")

    def go(n: ast.AST) -> Tree:
        if isinstance(n, ast.Name):
            if n.id != "x":
                raise TreeError(f"unknown name {n.id!r} in activation {text!r} (the input is x)")
            return {"op": "x"}
        if isinstance(n, ast.BinOp) and type(n.op) in _AST_BIN:
            return {"op": _AST_BIN[type(n.op)], "args": [go(n.left), go(n.right)]}
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return {"op": "neg", "args": [go(n.operand)]}
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and not n.keywords:
            f, args = n.func.id, n.args
            if f == "param" and len(args) == 2:
                return {**go(args[1]), "scale": number(args[0])}
            if f in UNARY and len(args) == 1:
                return {"op": f, "args": [go(args[0])]}
            if f in BINARY and len(args) == 2:
                return {"op": f, "args": [go(args[0]), go(args[1])]}
            raise TreeError(f"unknown function {f}() with {len(args)} argument(s) in activation {text!r}; "
                            f"unary: {', '.join(UNARY)}; binary: max, min; param(init, expr)")
        raise TreeError(f"cannot read {ast.unparse(n)!r} in activation {text!r}")

    tree = go(node)
    validate(tree)
    return tree


# ------------------------------------------------------------------------------------------
# evolution (PANGAEA's operators)
# ------------------------------------------------------------------------------------------
def random_tree(rng: np.random.Generator, unary: list[str], binary: list[str], max_depth: int = 3) -> Tree:
    """A small random tree: ``u(x)`` or ``b(u(x), u(x))`` with random operators (PANGAEA's
    initial population draws such simple functions)."""
    def leaf() -> Tree:
        return {"op": str(rng.choice(unary)), "args": [{"op": "x"}]}

    if max_depth < 3 or rng.random() < 0.5:
        return leaf()
    return {"op": str(rng.choice(binary)), "args": [leaf(), leaf()]}


def mutate(tree: Tree, rng: np.random.Generator, unary: list[str], binary: list[str], max_depth: int = 4,
           max_size: int = 9, param_prob: float = 0.2) -> Tree:
    """One of PANGAEA's mutations at a random node: insert (wrap it in a unary operator, or
    combine it with ``x`` under a binary one), remove (replace it by one of its arguments),
    change (another operator of the same arity), re-parameterise (add, drop or perturb a
    learnable scale). Returns a tree within ``max_depth`` and ``max_size`` that differs from
    ``tree`` (up to 50 draws; the input itself if none differ)."""
    for _ in range(50):
        path, node = nodes(tree)[int(rng.integers(size(tree)))]
        kind = rng.choice(["insert", "remove", "change", "param"], p=[0.35, 0.2, 0.35, 0.1])
        if kind == "param" or rng.random() < param_prob * (kind == "change"):
            if "scale" in node and rng.random() < 0.5:
                new = {k: v for k, v in node.items() if k != "scale"}
            else:
                base = float(node.get("scale", 1.0))
                new = {**node, "scale": round(base * float(np.exp(rng.normal(0.0, 0.3))), 4)}
        elif kind == "insert":
            if rng.random() < 0.5:
                new = {"op": str(rng.choice(unary)), "args": [node]}
            else:
                other: Tree = {"op": "x"} if rng.random() < 0.5 else {"op": str(rng.choice(unary)), "args": [{"op": "x"}]}
                pair = [node, other] if rng.random() < 0.5 else [other, node]
                new = {"op": str(rng.choice(binary)), "args": pair}
        elif kind == "remove":
            if node["op"] == "x":
                continue
            new = node["args"][int(rng.integers(len(node["args"])))]
        else:
            op = node["op"]
            pool = unary if op in UNARY else binary if op in BINARY else None
            if not pool or len(pool) < 2:
                continue
            new = {**node, "op": str(rng.choice([o for o in pool if o != op]))}
        child = replace(tree, path, new)
        if child != tree and depth(child) <= max_depth and size(child) <= max_size and child.get("op") != "x":
            return child
    return tree


def node_set(tree: Tree) -> set[str]:
    """The text of every subtree (a distance between trees: the size of the symmetric difference)."""
    return {to_text(n) for _, n in nodes(tree)}


BUILTIN: dict[str, str] = {
    "relu": "relu(x)", "swish": "x * sigmoid(x)", "tanh": "tanh(x)", "softplus": "softplus(x)",
}
"""Named activations for the baseline and for ``space.activation`` (aside from free text)."""
