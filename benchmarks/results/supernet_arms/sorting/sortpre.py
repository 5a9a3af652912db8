# Recorded copy: ran from scratch/arms4/ of the development checkout (outputs there, copied here).
"""Pretrain a supernet with Once-for-All's channel sorting (scratch experiment): with progressive
shrinking, when the expand ratio becomes elastic each block's hidden channels are sorted by
importance (L1 norm of the project conv's input weights), and when the width becomes elastic each
stage's output channels are (L1 norm of the project convs' output rows, summed over the stage's
blocks), so that the sliced narrow subnets keep the most important channels. Parameters and the
optimizer's momentum buffers are permuted together; the network's function is unchanged.

usage: python sortpre.py KEY=VALUE ...   (as `evonas stage pretrain --set`; needs supernet.progressive)
"""
import sys

import torch

import nas.spaces.elastic_build as eb
import nas.supernet as sn
from nas.config import load_config
from nas.stages import pretrain_supernet

NETS, OPTS = [], []
_sup_init, _sgd_init = eb.Supernet.__init__, torch.optim.SGD.__init__


def sup_init(self, *a, **k):
    _sup_init(self, *a, **k)
    NETS.append(self)


def sgd_init(self, params, *a, **k):
    params = list(params)
    _sgd_init(self, params, *a, **k)
    OPTS.append(self)


eb.Supernet.__init__, sn.Supernet.__init__ = sup_init, sup_init
torch.optim.SGD.__init__ = sgd_init


@torch.no_grad()
def perm(t: torch.Tensor, idx: torch.Tensor, dim: int) -> None:
    """Permute ``t`` along ``dim`` in place, and its momentum buffer in every registered optimizer."""
    t.copy_(t.index_select(dim, idx))
    for opt in OPTS:
        st = opt.state.get(t, {})
        buf = st.get("momentum_buffer")
        if buf is not None:
            buf.copy_(buf.index_select(dim, idx))


def perm_bn(bn, idx):
    for p in (bn.weight, bn.bias):
        perm(p, idx, 0)
    for b in (bn.running_mean, bn.running_var):
        b.copy_(b.index_select(0, idx))


@torch.no_grad()
def sort_hidden(net):
    for stage in net.stages:
        for blk in stage:
            imp = blk.project.weight.abs().sum(dim=(0, 2, 3))
            idx = torch.argsort(imp, descending=True)
            perm(blk.expand.weight, idx, 0)
            perm_bn(blk.bn1, idx)
            perm(blk.depthwise.weight, idx, 0)
            perm_bn(blk.bn2, idx)
            perm(blk.project.weight, idx, 1)


@torch.no_grad()
def sort_width(net):
    n = len(net.stages)
    for s in range(n):
        stage = net.stages[s]
        imp = sum(blk.project.weight.abs().sum(dim=(1, 2, 3)) for blk in stage)
        idx = torch.argsort(imp, descending=True)
        for blk in stage:
            perm(blk.project.weight, idx, 0)
            perm_bn(blk.bn3, idx)
        for blk in stage[1:]:
            perm(blk.expand.weight, idx, 1)
        if s + 1 < n:
            perm(net.stages[s + 1][0].expand.weight, idx, 1)
        else:
            perm(net.classifier.weight, idx, 1)
        first = stage[0]
        if first.stride == 1 and first.expand.weight.shape[1] == first.project.weight.shape[0]:
            # block 0 adds its input (the previous stage's or the stem's output) when the widths match
            if s == 0:
                perm(net.stem[0].weight, idx, 0)
                perm_bn(net.stem[1], idx)
                perm(first.expand.weight, idx, 1)
            else:
                raise SystemExit("a residual across stages: not handled")


_elastic = sn.elastic_dimensions
_seen: set = set()


def elastic_dimensions(schedule, epoch):
    dims = _elastic(schedule, epoch)
    if NETS:
        net = NETS[-1]
        if "expand" in dims and "expand" not in _seen:
            sort_hidden(net)
            print(f"epoch {epoch}: hidden channels sorted", flush=True)
        if "width" in dims and "width" not in _seen:
            sort_width(net)
            print(f"epoch {epoch}: stage channels sorted", flush=True)
        _seen.update(dims)
    return dims


sn.elastic_dimensions = elastic_dimensions

if __name__ == "__main__":
    cfg = load_config("params.yaml", sys.argv[1:])
    print(pretrain_supernet(cfg))
