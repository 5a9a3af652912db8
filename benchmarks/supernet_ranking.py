"""Does the supernet rank architectures like stand-alone training does?

Reuses the artifacts of the last ``evonas run`` (or ``make run``): the prepared data and the
trained supernet of the given params. For ``--subnets`` networks spread evenly over the sizes
of the space (quantiles of the parameter count over 2,000 uniform samples, the smallest and
largest network at the ends) it prints:

- the inherited-weight validation accuracy (supernet weights, BatchNorm recalibrated on
  ``evaluation.bn_batches`` training batches: exactly what the search sees), and its soft
  accuracy (the mean softmax probability of the true class, ``val_soft_accuracy``), with the
  Kendall tau of each against stand-alone accuracy;
- the stand-alone validation and test accuracy after training from scratch for ``--epochs``
  (``--repeats`` seeds, averaged);
- Kendall tau and Spearman rho between the two validation accuracies, the spread (max - min)
  of stand-alone test accuracy, and largest minus smallest. With ``--repeats`` >= 2, also the
  rank agreement between the seeds' own stand-alone accuracies: the noise ceiling, the best
  tau any predictor can expect against one noisy stand-alone measurement;
- a diagnostic beside that reference: the stand-alone networks' own soft accuracy on the
  validation split, and the tau of the inherited scores against it (and, with two seeds, between
  two seeds' soft accuracies), when every stand-alone run measured it (runs reused from
  references made before 2026-12-02 did not).

``--deployed N`` adds a second diagnostic: each subnet fine-tuned from its inherited weights exactly as
the select stage does it (``selection.finetune_epochs``; N seeds, the first the one ``make run`` uses),
and the tau of the inherited scores against those networks' validation accuracy: does the search's
score rank what the product delivers? (Not the issue's reference: such a network starts from the very
weights that are scored.)

``--reference OLD.json`` reuses the stand-alone runs of an earlier ``--json`` output made on
the same prepared data with the same stand-alone recipe (they do not depend on the supernet):
only repeats it lacks are trained. So a changed supernet is checked in the minutes of its own
training, and a reference can be extended seed by seed (``--repeats 4 --reference 2seeds.json``).

With ``--repeats`` >= 2 it also estimates the reference's own reliability (seed noise against the
true differences between subnets) and the tau a perfect predictor is expected to reach against it;
``--analyse OLD.json`` prints that for an earlier output without retraining anything.

``--combine A.json B.json ...`` averages the inherited accuracies of several outputs on the same
subnets (supernets trained with other ``supernet.seed`` values or recipes) and ranks the mean
against the stand-alone runs: what an ensemble of supernets would rank.

Usage:
  python benchmarks/supernet_ranking.py [--params params.yaml] [--set KEY=VALUE ...]
      [--subnets 24] [--subnet-seed 99] [--epochs 20] [--repeats 1] [--workers 2] [--reference OLD.json]
      [--deployed 0] [--json out.json]
  python benchmarks/supernet_ranking.py --analyse OLD.json
  python benchmarks/supernet_ranking.py --combine A.json B.json [...] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPEAT_SEED_STEP = 7919
"""Stand-alone repeat r trains with the candidate's seed + r * this."""


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def standalone(params: str, overrides: list[str], values: list[int], seed: int, epochs: int) -> dict:
    """Train one subnet from scratch (one process, one thread) and score it on val and test."""
    from nas.spaces.elastic_build import build_subnet
    from nas.training import train

    cfg, data, space, genome, device = _worker_setup(params, overrides, values, seed)
    net = build_subnet(space, genome, data.input_shape[0], data.num_classes)
    t0 = time.perf_counter()
    ev = cfg.evaluation
    train(net, data.x_train, data.y_train, epochs, ev.train_lr, ev.train_batch_size, np.random.default_rng(seed), device)
    return _scored(net, data, device, t0)


def _worker_setup(params: str, overrides: list[str], values: list[int], seed: int):
    """A worker's config, prepared data, space, genome and device, with torch seeded from ``seed``."""
    import torch

    from nas.config import load_config
    from nas.data import load_prepared
    from nas.genome import Genome
    from nas.spaces.elastic import ElasticSpace
    from nas.training import resolve_device

    cfg = load_config(params, overrides)
    data = load_prepared(cfg.data.out_dir)
    torch.manual_seed(seed)
    space = ElasticSpace(cfg.space)
    return cfg, data, space, Genome(tuple(values), space.name), resolve_device(cfg.evaluation.device)


def _scored(net, data, device, t0: float) -> dict:
    """Accuracy and soft accuracy of a trained network on val and test, and the seconds since ``t0``."""
    from nas.training import accuracy_and_soft

    val, val_soft = accuracy_and_soft(net, data.x_val, data.y_val, device=device)
    test, test_soft = accuracy_and_soft(net, data.x_test, data.y_test, device=device)
    return {"val": val, "test": test, "val_soft": val_soft, "test_soft": test_soft, "seconds": time.perf_counter() - t0}


def deployed(params: str, overrides: list[str], values: list[int], seed: int) -> dict:
    """What the select stage delivers for one subnet (one process, one thread): extracted from the
    supernet and fine-tuned by the product's own recipe (``selection.finetune_epochs``; the select
    stage's :meth:`nas.backends.Backend.selected_network`), scored on val and test."""
    from nas.backends import backend

    cfg, data, _, genome, device = _worker_setup(params, overrides, values, seed)
    t0 = time.perf_counter()
    net = backend(cfg).selected_network(cfg, data, genome, seed, np.random.default_rng(seed), device)
    return _scored(net, data, device, t0)


def check_artifacts(cfg) -> tuple:
    """The supernet and prepared data of ``cfg``, checked to belong together."""
    from nas.data import load_prepared
    from nas.supernet import load_supernet

    try:
        bundle = load_supernet(cfg.supernet.out_dir)
        data = load_prepared(cfg.data.out_dir)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f"error: {exc}\n(run `make run`, or `evonas run` with the same --params and --set, first)")
    if bundle.meta["space"] != cfg.space.model_dump():
        sys.exit(f"error: {cfg.supernet.out_dir} holds a supernet of another space than these params; rerun "
                 "`evonas run` (or `evonas stage pretrain`) with them first")
    if bundle.meta.get("dataset_hash") != data.dataset_hash:
        sys.exit(f"error: the supernet in {cfg.supernet.out_dir} was trained on other data than "
                 f"{cfg.data.out_dir} holds; rerun `evonas run` with these params first")
    return bundle, data


def recipe(cfg, epochs: int) -> dict:
    """What a stand-alone run depends on besides the architecture and its seed."""
    ev = cfg.evaluation
    return {"epochs": epochs, "lr": ev.train_lr, "batch_size": ev.train_batch_size, "weight_decay": 3e-5,
            "optimizer": "sgd-nesterov-cosine"}


def load_reference(path: Path, dataset_hash: str, want: dict) -> dict[str, list[dict]]:
    """Stand-alone runs by candidate id from an earlier ``--json`` output, after checking that
    they were made on the same data with the same recipe (a file from before the recipe was
    recorded is accepted when its epochs match: the recipe's other values were the defaults)."""
    import json

    try:
        ref = json.loads(Path(path).read_text())
        runs = {r["candidate_id"]: list(r["runs"]) for r in ref["subnets"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.exit(f"error: --reference {path}: not a supernet_ranking --json output ({exc})")
    if ref.get("dataset_hash") != dataset_hash:
        sys.exit(f"error: --reference {path} was measured on other data (dataset hash {ref.get('dataset_hash')}, "
                 f"these params prepare {dataset_hash})")
    got = ref.get("standalone_recipe", {"epochs": ref.get("standalone_epochs")})
    diff = {k: (got[k], want[k]) for k in got if got[k] != want.get(k)}
    if diff:
        sys.exit(f"error: --reference {path} used another stand-alone recipe: "
                 + ", ".join(f"{k} {a} (here {b})" for k, (a, b) in diff.items()))
    return runs


def measure(cfg, params: str, overrides: list[str], subnets: int = 24, epochs: int = 20, repeats: int = 1,
            workers: int = 2, reference: Path | None = None, subnet_seed: int = 99, deployed_repeats: int = 0) -> dict:
    """Inherited against stand-alone accuracy for ``subnets`` size-stratified subnets of the
    last run of ``cfg`` (its prepared data and supernet), drawn with ``[cfg.seed, subnet_seed]``;
    progress is printed as it goes.
    Stand-alone runs found in ``reference`` (see :func:`load_reference`) are reused. With
    ``deployed_repeats``, each subnet is also fine-tuned from its inherited weights as the select
    stage does it, that many times (seed 0: the seed `make run` uses; see :func:`against_deployed`)."""
    from scipy.stats import kendalltau, spearmanr

    from nas.backends import backend
    from nas.genome import candidate_seed
    from nas.strategies.base import size_stratified

    t_start = time.perf_counter()
    if cfg.space.kind != "elastic_cnn":
        sys.exit(f"error: space.kind '{cfg.space.kind}' has no supernet to rank (elastic_cnn only)")
    bundle, data = check_artifacts(cfg)
    space = bundle.space
    genomes = size_stratified(space, np.random.default_rng([cfg.seed, subnet_seed]), subnets,
                              lambda g: bundle.costs(g)["params"])
    ev = cfg.evaluation
    # exactly the search's evaluator (the backend builds it from cfg), on every core of this process
    inherited = dataclasses.replace(backend(cfg).evaluator(cfg), threads=max(1, os.cpu_count() or 1))
    print(f"data {cfg.data.kind}: {len(data.y_train)} train / {len(data.y_val)} val / {len(data.y_test)} test images, "
          f"{data.num_classes} classes, input {data.input_shape}; {len(genomes)} subnets by size; stand-alone "
          f"{epochs} epochs x {repeats} seed(s) on {workers} process(es)", flush=True)
    known = load_reference(reference, data.dataset_hash, recipe(cfg, epochs)) if reference else {}
    rows = []
    for g in genomes:
        m = inherited.metrics(g, candidate_seed(cfg.seed, g))
        rows.append({"candidate_id": g.key(), "architecture": space.describe(g), "params": int(m["params"]),
                     "flops": int(m["flops"]), "inherited_val": m["val_accuracy"],
                     "inherited_soft_val": m["val_soft_accuracy"],
                     "runs": known.get(g.key(), [])[:repeats]})
    jobs = [(i, r) for r in range(repeats) for i in range(len(genomes)) if r >= len(rows[i]["runs"])]
    if reference:
        print(f"reusing {repeats * len(rows) - len(jobs)} stand-alone run(s) from {reference}; {len(jobs)} to train",
              flush=True)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        futures = {pool.submit(standalone, params, overrides, list(genomes[i].values),
                               candidate_seed(cfg.seed, genomes[i]) + r * REPEAT_SEED_STEP, epochs): (i, r)
                   for i, r in jobs}
        for done, fut in enumerate(futures, 1):  # in submission order; the pool runs them in parallel
            i, r = futures[fut]
            res = fut.result()
            rows[i]["runs"].append(res)
            print(f"  [{done:3d}/{len(jobs)}] {rows[i]['architecture']:48s} {rows[i]['params']:7d} params  inherited "
                  f"val {rows[i]['inherited_val']:.4f} | stand-alone val {res['val']:.4f} test {res['test']:.4f} "
                  f"({res['seconds']:.0f} s)", flush=True)
        if deployed_repeats:
            print(f"fine-tuning each subnet as the select stage does ({cfg.selection.finetune_epochs} epochs from its "
                  f"inherited weights) x {deployed_repeats} seed(s)", flush=True)
            futures = {pool.submit(deployed, params, overrides, list(genomes[i].values),
                                   candidate_seed(cfg.seed, genomes[i]) + r * REPEAT_SEED_STEP): (i, r)
                       for r in range(deployed_repeats) for i in range(len(genomes))}
            for done, fut in enumerate(futures, 1):
                i, r = futures[fut]
                res = fut.result()
                rows[i].setdefault("deployed_runs", []).append(res)
                print(f"  [{done:3d}/{len(futures)}] {rows[i]['architecture']:48s} inherited soft "
                      f"{rows[i]['inherited_soft_val']:.4f} | deployed val {res['val']:.4f} test {res['test']:.4f} "
                      f"({res['seconds']:.0f} s)", flush=True)
    for row in rows:
        row["standalone_val"] = float(np.mean([r["val"] for r in row["runs"]]))
        row["standalone_test"] = float(np.mean([r["test"] for r in row["runs"]]))
    inh = np.array([r["inherited_val"] for r in rows])
    soft = np.array([r["inherited_soft_val"] for r in rows])
    sval = np.array([r["standalone_val"] for r in rows])
    stest = np.array([r["standalone_test"] for r in rows])
    out = {
        "n_subnets": len(rows), "kendall_tau": float(kendalltau(inh, sval).statistic),
        "spearman": float(spearmanr(inh, sval).statistic),
        "kendall_tau_soft": float(kendalltau(soft, sval).statistic),
        "spearman_soft": float(spearmanr(soft, sval).statistic),
        "subnet_seed": subnet_seed,
        "standalone_spread": float(stest.max() - stest.min()),
        "largest_minus_smallest": float(stest[-1] - stest[0]),
        "standalone_val_spread": float(sval.max() - sval.min()),
        "largest_minus_smallest_val": float(sval[-1] - sval[0]),
        "kendall_tau_params_vs_standalone": float(kendalltau([r["params"] for r in rows], sval).statistic),
        "kendall_tau_standalone_val_vs_test": float(kendalltau(sval, stest).statistic),
        "sampling": "size-stratified: quantiles of params over 2000 uniform samples, smallest and largest at the ends",
        "standalone_epochs": epochs, "standalone_recipe": recipe(cfg, epochs), "repeats": repeats,
        "reference": str(reference) if reference else None, "bn_batches": ev.bn_batches,
        "inherited_finetune": {"epochs": ev.inherited_finetune_epochs, "lr": ev.inherited_finetune_lr},
        "n_train": int(len(data.y_train)), "n_val": int(len(data.y_val)), "n_test": int(len(data.y_test)),
        "data_kind": cfg.data.kind, "dataset_hash": data.dataset_hash, "params": params, "overrides": overrides,
    }
    if repeats >= 2:
        first = [r["runs"][0]["val"] for r in rows]
        second = [r["runs"][1]["val"] for r in rows]
        out["noise_ceiling_tau"] = float(kendalltau(first, second).statistic)
        out["kendall_tau_vs_first_seed"] = float(kendalltau(inh, first).statistic)
        # split-half reliability of the averaged reference: tau between the means of two disjoint
        # halves of the seeds (the noise ceiling of a reference of repeats / 2 seeds)
        if repeats >= 4:
            h = repeats // 2
            a = [np.mean([x["val"] for x in r["runs"][:h]]) for r in rows]
            b = [np.mean([x["val"] for x in r["runs"][h:2 * h]]) for r in rows]
            out["noise_ceiling_tau_half_means"] = float(kendalltau(a, b).statistic)
        out["reference_reliability"] = reference_reliability(rows, len(data.y_val))
    out.update(against_standalone_soft(rows))
    out.update(against_deployed(rows))
    out["seconds"] = time.perf_counter() - t_start
    out["subnets"] = rows
    return out


def against_standalone_soft(rows: list[dict]) -> dict:
    """A diagnostic beside the stand-alone (argmax) accuracy reference: the stand-alone networks'
    own soft accuracy on the validation split (mean over their seeds), the Kendall tau of the
    inherited accuracy and of the inherited soft accuracy against it, and, with two seeds or more,
    the tau between the first two seeds' soft accuracies (that reference's own noise). Empty when
    some stand-alone run predates the soft accuracy (a reused reference)."""
    from scipy.stats import kendalltau

    if not all(r["runs"] and all("val_soft" in x for x in r["runs"]) for r in rows):
        return {}
    ref = [float(np.mean([x["val_soft"] for x in r["runs"]])) for r in rows]
    for r, v in zip(rows, ref):
        r["standalone_soft_val"] = v
    out = {"kendall_tau_vs_standalone_soft": float(kendalltau([r["inherited_val"] for r in rows], ref).statistic),
           "kendall_tau_soft_vs_standalone_soft": float(kendalltau([r["inherited_soft_val"] for r in rows],
                                                                   ref).statistic),
           "kendall_tau_standalone_soft_vs_standalone_val": float(kendalltau(
               ref, [np.mean([x["val"] for x in r["runs"]]) for r in rows]).statistic)}
    if min(len(r["runs"]) for r in rows) >= 2:
        out["noise_ceiling_tau_soft"] = float(kendalltau([r["runs"][0]["val_soft"] for r in rows],
                                                         [r["runs"][1]["val_soft"] for r in rows]).statistic)
    return out


def against_deployed(rows: list[dict]) -> dict:
    """A second diagnostic: does the search's score rank what the product delivers? Against each
    subnet's validation accuracy after the select stage's fine-tuning from its inherited weights
    (``deployed_runs``, mean over their seeds): the Kendall tau of the inherited soft and argmax
    accuracies and of the parameter count, the tau between the deployed and the stand-alone
    validation accuracies, the mean deployed and stand-alone test accuracies over the subnets and
    how many subnets test better deployed; with two seeds, the tau between them (this reference's
    own noise); and the taus against the deployed *test* accuracy (``test_*``), which shares no
    images with the inherited scores (an inherited and a deployed accuracy on the same validation
    images share those images' luck). Not the issue's reference: a deployed network starts from the
    very weights that are scored. Empty without deployed runs."""
    from scipy.stats import kendalltau

    if not rows or not all(r.get("deployed_runs") for r in rows):
        return {}
    dval = [float(np.mean([x["val"] for x in r["deployed_runs"]])) for r in rows]
    dtest = [float(np.mean([x["test"] for x in r["deployed_runs"]])) for r in rows]
    for r, v, t in zip(rows, dval, dtest):
        r["deployed_val"], r["deployed_test"] = v, t
    out = {"repeats": min(len(r["deployed_runs"]) for r in rows),
           "kendall_tau_soft": float(kendalltau([r["inherited_soft_val"] for r in rows], dval).statistic),
           "kendall_tau": float(kendalltau([r["inherited_val"] for r in rows], dval).statistic),
           "kendall_tau_params": float(kendalltau([r["params"] for r in rows], dval).statistic),
           "mean_test": float(np.mean(dtest)), "spread_test": float(max(dtest) - min(dtest)),
           # the same against the deployed networks' *test* accuracy: scored on other images than the
           # inherited scores, so free of the validation images' shared noise (reported, never chosen on)
           "test_kendall_tau_soft": float(kendalltau([r["inherited_soft_val"] for r in rows], dtest).statistic),
           "test_kendall_tau": float(kendalltau([r["inherited_val"] for r in rows], dtest).statistic),
           "test_kendall_tau_params": float(kendalltau([r["params"] for r in rows], dtest).statistic),
           "kendall_tau_val_vs_test": float(kendalltau(dval, dtest).statistic)}
    if all(r["runs"] for r in rows):
        sval = [float(np.mean([x["val"] for x in r["runs"]])) for r in rows]
        stest = [float(np.mean([x["test"] for x in r["runs"]])) for r in rows]
        out["kendall_tau_vs_standalone_val"] = float(kendalltau(dval, sval).statistic)
        out["standalone_mean_test"] = float(np.mean(stest))
        out["subnets_testing_better_deployed"] = int(sum(d > s for d, s in zip(dtest, stest)))
    if out["repeats"] >= 2:
        out["noise_ceiling_tau"] = float(kendalltau([r["deployed_runs"][0]["val"] for r in rows],
                                                    [r["deployed_runs"][1]["val"] for r in rows]).statistic)
    return {"deployed": out}


def reference_reliability(rows: list[dict], n_val: int) -> dict:
    """How far a stand-alone reference of several seeds can rank at all (needs >= 2 seeds per
    subnet). From the seeds' validation accuracies: the pooled within-subnet (seed) standard
    deviation, the between-subnet standard deviation of the true (infinitely averaged) accuracy,
    the single-seed reliability (intraclass correlation) and that of the mean of ``k`` seeds
    (Spearman-Brown), and the Kendall tau a *perfect* predictor is expected to reach against one
    seed and against the ``k``-seed mean: for jointly normal scores with correlation r, tau =
    (2/pi) arcsin(r), and a perfect predictor's correlation with a reference of reliability R is
    sqrt(R). With >= 3 seeds, also each seed's tau against the mean of the others: how well one
    stand-alone training ranks. Also the binomial standard deviation of an accuracy on ``n_val``
    images, the share of seed noise that a fixed validation set of that size explains."""
    from scipy.stats import kendalltau

    runs = [[x["val"] for x in r["runs"]] for r in rows]
    k = min(len(v) for v in runs)
    if k < 2:
        return {}
    v = np.array([x[:k] for x in runs])
    within = float(v.var(axis=1, ddof=1).mean())
    between_means = float(v.mean(axis=1).var(ddof=1))
    true_var = max(between_means - within / k, 0.0)
    icc = true_var / (true_var + within) if true_var + within > 0 else 0.0
    rel_k = k * icc / (1 + (k - 1) * icc) if icc > 0 else 0.0
    p = float(v.mean())
    # one stand-alone training as a predictor of the mean of the other seeds: the bar for any
    # predictor that is itself an accuracy on the same validation images
    one_vs_rest = [float(kendalltau(v[:, i], np.delete(v, i, axis=1).mean(axis=1)).statistic) for i in range(k)] \
        if k >= 3 else []
    return {"seeds": k, "within_sd": within ** 0.5, "true_between_sd": true_var ** 0.5, "icc_single_seed": icc,
            "tau_one_seed_vs_mean_of_others": one_vs_rest, "reliability_mean_of_seeds": rel_k, "binomial_sd_val": (p * (1 - p) / max(n_val, 1)) ** 0.5,
            "expected_tau_perfect_vs_one_seed": float(2 / np.pi * np.arcsin(icc ** 0.5)),
            "expected_tau_perfect_vs_mean": float(2 / np.pi * np.arcsin(rel_k ** 0.5))}


def combine(runs: list[dict]) -> dict:
    """Several ``--json`` outputs on the same subnets and data (supernets of other seeds or recipes):
    each one's Kendall tau against the stand-alone reference, the tau of their mean inherited
    accuracy (a supernet ensemble), and how far the supernets agree with each other. The
    reference is the stand-alone runs of the output that holds the most of them."""
    from scipy.stats import kendalltau, spearmanr

    if len(runs) < 2:
        raise ValueError("--combine needs at least two --json outputs")
    ids = [r["candidate_id"] for r in runs[0]["subnets"]]
    for i, run in enumerate(runs[1:], 2):
        if run.get("dataset_hash") != runs[0].get("dataset_hash"):
            raise ValueError(f"output {i} was measured on other data (dataset hash {run.get('dataset_hash')}, "
                             f"the first: {runs[0].get('dataset_hash')})")
        if sorted(r["candidate_id"] for r in run["subnets"]) != sorted(ids):
            raise ValueError(f"output {i} ranks other subnets than the first")
    ref = max(runs, key=lambda run: sum(len(r["runs"]) for r in run["subnets"]))
    sval = {r["candidate_id"]: float(np.mean([x["val"] for x in r["runs"]])) for r in ref["subnets"]}
    target = np.array([sval[c] for c in ids])
    inh = _scores(runs, ids, "inherited_val")
    mean = inh.mean(axis=0)
    pairs = [float(kendalltau(inh[a], inh[b]).statistic) for a in range(len(runs)) for b in range(a + 1, len(runs))]
    return {"n_subnets": len(ids), "supernets": len(runs), "reference_repeats": int(min(len(r["runs"]) for r in ref["subnets"])),
            "kendall_tau_each": [float(kendalltau(row, target).statistic) for row in inh],
            "kendall_tau_mean": float(kendalltau(mean, target).statistic),
            "spearman_mean": float(spearmanr(mean, target).statistic),
            "kendall_tau_between_supernets": pairs, **combine_soft(runs, ids, target)}


def _scores(runs: list[dict], ids: list[str], key: str) -> np.ndarray:
    """``(outputs, subnets)``: each output's ``key`` score of each subnet, in the order of ``ids``."""
    return np.array([[{r["candidate_id"]: r[key] for r in run["subnets"]}[c] for c in ids] for run in runs])


def combine_soft(runs: list[dict], ids: list[str], target: np.ndarray) -> dict:
    """The same for the inherited soft accuracy, when every output has it (outputs from before it
    was measured have not)."""
    from scipy.stats import kendalltau

    if not all("inherited_soft_val" in r for run in runs for r in run["subnets"]):
        return {}
    soft = _scores(runs, ids, "inherited_soft_val")
    return {"kendall_tau_each_soft": [float(kendalltau(s, target).statistic) for s in soft],
            "kendall_tau_mean_soft": float(kendalltau(soft.mean(axis=0), target).statistic)}


def print_report(out: dict) -> None:
    print(f"\n{'architecture':48s} {'params':>8s} {'inherited':>9s} {'stand-alone val':>15s} {'test':>7s}")
    for r in out["subnets"]:
        print(f"{r['architecture']:48s} {r['params']:8d} {r['inherited_val']:9.4f} {r['standalone_val']:15.4f} "
              f"{r['standalone_test']:7.4f}")
    print(f"\nKendall tau (inherited val vs stand-alone val)   {out['kendall_tau']:.3f}   (target >= 0.6)")
    print(f"Spearman rho                                     {out['spearman']:.3f}")
    if "kendall_tau_soft" in out:
        print(f"Kendall tau (inherited soft accuracy vs stand-alone val) {out['kendall_tau_soft']:.3f}, "
              f"Spearman {out['spearman_soft']:.3f}")
    if "kendall_tau_soft_vs_standalone_soft" in out:
        print(f"diagnostic, against the stand-alone networks' own soft accuracy: inherited soft accuracy tau "
              f"{out['kendall_tau_soft_vs_standalone_soft']:.3f}, inherited accuracy tau "
              f"{out['kendall_tau_vs_standalone_soft']:.3f} (stand-alone soft vs argmax accuracy: "
              f"{out['kendall_tau_standalone_soft_vs_standalone_val']:.3f})")
        if "noise_ceiling_tau_soft" in out:
            print(f"  tau between two stand-alone seeds' soft accuracies {out['noise_ceiling_tau_soft']:.3f}")
    if "deployed" in out:
        d = out["deployed"]
        print(f"diagnostic, against what the select stage delivers (fine-tuned from inherited weights, {d['repeats']} "
              f"seed(s)): inherited soft accuracy tau {d['kendall_tau_soft']:.3f}, inherited accuracy tau "
              f"{d['kendall_tau']:.3f}, params tau {d['kendall_tau_params']:.3f}; mean test {d['mean_test']:.4f}"
              + (f" (stand-alone {d['standalone_mean_test']:.4f}; {d['subnets_testing_better_deployed']} of "
                 f"{out['n_subnets']} subnets test better deployed); deployed vs stand-alone val tau "
                 f"{d['kendall_tau_vs_standalone_val']:.3f}" if "standalone_mean_test" in d else ""))
        print(f"  against the deployed networks' test accuracy (no shared images): inherited soft accuracy tau "
              f"{d['test_kendall_tau_soft']:.3f}, inherited accuracy {d['test_kendall_tau']:.3f}, params "
              f"{d['test_kendall_tau_params']:.3f}, their own val accuracy {d['kendall_tau_val_vs_test']:.3f}; "
              f"test spread {d['spread_test']:.4f}")
        if "noise_ceiling_tau" in d:
            print(f"  tau between two deployed seeds {d['noise_ceiling_tau']:.3f}")
    if "noise_ceiling_tau" in out:
        print(f"noise ceiling: tau between two stand-alone seeds {out['noise_ceiling_tau']:.3f}")
    if "noise_ceiling_tau_half_means" in out:
        print(f"tau between the means of two halves of the seeds {out['noise_ceiling_tau_half_means']:.3f}")
    rel = out.get("reference_reliability") or {}
    if rel:
        print(f"reference: seed sd {rel['within_sd']:.4f} (binomial sd of {out['n_val']} val images "
              f"{rel['binomial_sd_val']:.4f}), true between-subnet sd {rel['true_between_sd']:.4f}, single-seed "
              f"reliability {rel['icc_single_seed']:.2f}")
        print(f"a perfect predictor is expected to reach tau {rel['expected_tau_perfect_vs_one_seed']:.2f} against one "
              f"seed, {rel['expected_tau_perfect_vs_mean']:.2f} against the mean of {rel['seeds']}")
        if rel.get("tau_one_seed_vs_mean_of_others"):
            print("one stand-alone seed against the mean of the others: tau "
                  + ", ".join(f"{t:.2f}" for t in rel["tau_one_seed_vs_mean_of_others"]))
    print(f"stand-alone test spread (max - min)              {out['standalone_spread']:.3f}   (target >= 0.08)")
    print(f"largest - smallest (stand-alone test)            {out['largest_minus_smallest']:.3f}   (target >= 0.05)")
    print(f"Kendall tau (params vs stand-alone val)          {out['kendall_tau_params_vs_standalone']:.3f}")
    print(f"finished in {out['seconds']:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a params value, as in `evonas run`")
    ap.add_argument("--subnets", type=int, default=24)
    ap.add_argument("--subnet-seed", type=int, default=99,
                    help="draws the size-stratified subnets (another value: another set, e.g. held-out subnets)")
    ap.add_argument("--epochs", type=int, default=20, help="stand-alone training epochs (one budget for all)")
    ap.add_argument("--repeats", type=int, default=1, help="stand-alone trainings per subnet (seeds), averaged")
    ap.add_argument("--workers", type=int, default=2, help="processes training stand-alone networks in parallel")
    ap.add_argument("--deployed", type=int, default=0, metavar="N",
                    help="also fine-tune each subnet from its inherited weights as the select stage does, N seeds, "
                         "and rank against that (a diagnostic: what the product delivers)")
    ap.add_argument("--reference", type=Path, default=None, metavar="OLD.json",
                    help="reuse the stand-alone runs of an earlier --json output (same data and recipe)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--analyse", type=Path, default=None, metavar="OLD.json",
                    help="only print the report of an earlier --json output, with the reference's reliability and "
                         "the diagnostics recomputed from its runs (needs no artifacts; --json writes the result)")
    ap.add_argument("--combine", type=Path, nargs="+", default=None, metavar="RUN.json",
                    help="only average the inherited accuracies of several --json outputs (other supernets on the "
                         "same subnets and data) and rank the mean against their stand-alone runs (needs no artifacts)")
    args = ap.parse_args()
    if args.combine:
        import json

        try:
            out = combine([json.loads(Path(f).read_text()) for f in args.combine])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.exit(f"error: --combine: {exc}")
        out["files"] = [str(f) for f in args.combine]
        for f, tau in zip(args.combine, out["kendall_tau_each"]):
            print(f"{str(f):60s} Kendall tau {tau:.3f}")
        print(f"mean inherited accuracy of the {out['supernets']} supernets: Kendall tau {out['kendall_tau_mean']:.3f}, "
              f"Spearman {out['spearman_mean']:.3f} (against {out['reference_repeats']} stand-alone seed(s) per subnet)")
        print("the supernets against each other: Kendall tau "
              + ", ".join(f"{t:.2f}" for t in out["kendall_tau_between_supernets"]))
        if "kendall_tau_mean_soft" in out:
            print("soft accuracy: Kendall tau " + ", ".join(f"{t:.3f}" for t in out["kendall_tau_each_soft"])
                  + f"; of the mean {out['kendall_tau_mean_soft']:.3f}")
        if args.json:
            from nas.io import atomic_write_json

            atomic_write_json(args.json, out)
            print(f"wrote {args.json}")
        return
    if args.analyse:
        import json

        try:
            old = json.loads(args.analyse.read_text())
            old["reference_reliability"] = reference_reliability(old["subnets"], old["n_val"])
            old.update(against_standalone_soft(old["subnets"]))
            old.update(against_deployed(old["subnets"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.exit(f"error: --analyse {args.analyse}: not a supernet_ranking --json output ({exc})")
        print_report(old)
        if args.json:
            from nas.io import atomic_write_json

            atomic_write_json(args.json, old)
            print(f"wrote {args.json} (the summaries recomputed from the recorded runs)")
        return
    if args.subnets < 3 or args.epochs < 1 or args.repeats < 1 or args.workers < 1 or args.deployed < 0:
        sys.exit("error: --subnets must be >= 3, --epochs, --repeats, --workers >= 1 and --deployed >= 0")
    os.chdir(ROOT)
    from nas.config import ConfigError, load_config

    try:
        cfg = load_config(args.params, args.overrides)
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    out = measure(cfg, str(args.params), args.overrides, args.subnets, args.epochs, args.repeats, args.workers,
                  args.reference, args.subnet_seed, args.deployed)
    print_report(out)
    if args.json:
        from nas.io import atomic_write_json

        atomic_write_json(args.json, out)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
