"""SEP crossover where the permutation problem lives: graph cells whose nodes can be numbered in
many ways, in the noise-free setting of Qiu & Miikkulainen (ICML 2023).

Fitness is the graph edit distance (GED) to a target architecture, so no trained-network table
is needed, and progress is the best GED to the target over evaluations. Settings:

* ``dag``: NAS-Bench-101-style cells (``DAGCellSpace``: 7 vertices, 9 edges, conv3x3 / conv1x1
  / maxpool3x3), target the NAS-Bench-101 optimum cell (``--target``, the ModelSpec JSON;
  default ``../shared/benchdata/nb101_optimum.json``); GED exact.
* ``recurrent``: NAS-Bench-NLP-style recurrent cells (``RNNCellSpace``, 2 states), target the
  LSTM cell; ``recurrent_gru``: 1 state, target the GRU cell. GED on these larger graphs is the
  best of a greedy mapping and a bounded exact search (a number of partial mappings):
  an upper bound, exact whenever the search finishes (``--lstm-expansions`` 300,
  ``--gru-expansions`` 2,000: about 6 ms per GED; the paper's networkx search ran under a
  timeout too); a cell isomorphic to the target (the same canonical genome) scores exactly 0.

Methods, with the paper's settings: regularised (aging) evolution, population 100,
tournament 10 (``nas.strategies.aging``), with mutation only (``mutation``), or with half of
the children made by crossover of the winners of two tournaments and not mutated afterwards
(the paper alternates one mutation and one crossover child): standard crossover, each gene of
the adjacency / slot encoding from either parent (``standard``), or Shortest-Edit-Path
crossover (``sep``); on the dag setting also ``standard_renumbered``, standard crossover of the
parents under fresh random numberings (raw NAS-Bench-101 specs are not canonical, which is where
the permutation problem bites; our genomes are); a crossover that finds no valid child distinct from both parents is
replaced by a mutant of the first parent (counted). ``reinforce``: the REINFORCE controller of
NAS-Bench-101's baselines (``nas.strategies.reinforce``: independent categoricals per gene,
learning rate 0.1, moving-average baseline, reward = -GED, no normalisation). ``random``:
uniform random cells. Every method evaluates distinct cells only (a repeat costs nothing and
is not counted), and all randomness comes from the seed.

Printed: per setting and budget, mean ± standard error of the best GED to the target over the
seeds, and in brackets the share of runs that reached GED 0; then SEP against standard
crossover and mutation at the final budget (paired over seeds: mean difference and two-sided
Wilcoxon signed-rank p). ``--json PATH`` writes ``{SETTING: {"methods": {METHOD: {BUDGET:
{"mean_ged", "se", "reached"}}}, "p_sep_vs_standard", "p_sep_vs_mutation", "seeds", ...}}``;
``--plot PATH`` draws GED against evaluations per setting.

Usage: python benchmarks/sep_permutation.py [--settings dag,recurrent,recurrent_gru] [--seeds 30]
         [--dag-budgets 100,200,500,1000,2000] [--rnn-budgets 100,200,500,1000] [--workers 2]
         [--json benchmarks/results/sep_permutation.json] [--plot benchmarks/results/sep_permutation.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.genome import EvaluationResult, Genome  # noqa: E402
from nas.operators.sep import edit_path  # noqa: E402

METHODS: tuple[str, ...] = ("sep", "standard", "mutation", "reinforce", "random", "standard_renumbered")
SETTINGS: tuple[str, ...] = ("dag", "recurrent", "recurrent_gru")
DEFAULT_TARGET = ROOT.parent / "shared" / "benchdata" / "nb101_optimum.json"


class CountingSpace:
    """The space with its crossover replaced by one named operator (``sep`` or ``standard``);
    when that operator finds no child, a mutant of the first parent, counted in ``fallbacks``."""

    def __init__(self, space, operator: str):
        self._space, self.operator = space, operator
        self.crossovers = self.fallbacks = 0

    def __getattr__(self, name):
        return getattr(self._space, name)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
        self.crossovers += 1
        if self.operator == "sep":
            child = self._space.sep_crossover(a, b, rng)
        elif self.operator == "standard_renumbered":
            child = self._space.standard_crossover(a, b, rng, renumber=True)
        else:
            child = self._space.standard_crossover(a, b, rng)
        if child is None:
            self.fallbacks += 1
            child = self._space.mutate(a, rng)
        return child


def make_setting(setting: str, target_path: Path):
    """(space, target genome, GED function) of a setting."""
    if setting == "dag":
        from nas.spaces.dag_cell import DAGCellSpace

        space = DAGCellSpace()
        if not target_path.is_file():
            sys.exit(f"error: target cell {target_path} not found (give --target: a JSON with 'matrix' and 'ops')")
        spec = json.loads(target_path.read_text())
        target = space.from_spec(spec["matrix"], spec["ops"])
        kwargs: dict = {}
    else:
        from nas.spaces.rnn_cell import RNNCellSpace

        space = RNNCellSpace(hidden=2 if setting == "recurrent" else 1)
        target = space.largest()  # the LSTM / GRU cell
        kwargs = {"max_exact_nodes": 64, "max_expansions": EXPANSIONS[setting]}
    tg = space.to_graph(target)
    cache: dict[Genome, tuple[float, bool]] = {}

    def ged(g: Genome) -> tuple[float, bool]:
        if g == target:
            return 0.0, True
        if g not in cache:
            p = edit_path(space.to_graph(g), tg, **kwargs)
            cache[g] = (float(p.cost), bool(p.exact))
        return cache[g]

    return space, target, ged


EXPANSIONS = {"recurrent": 300, "recurrent_gru": 2000}
_SETTING_CACHE: dict = {}


def run_one(job: tuple) -> dict:
    setting, method, seed, budget, target_path, expansions, population, tournament = job
    EXPANSIONS.update(expansions)
    if setting not in _SETTING_CACHE:  # one GED cache per setting and worker process, shared by its runs
        _SETTING_CACHE[setting] = make_setting(setting, Path(target_path))
    space, target, ged = _SETTING_CACHE[setting]
    from nas.strategies.aging import AgingEvolutionStrategy
    from nas.strategies.random_search import RandomStrategy
    from nas.strategies.reinforce import ReinforceStrategy

    wrapped = None
    if method in ("sep", "standard", "mutation", "standard_renumbered"):
        wrapped = CountingSpace(space, method if method != "mutation" else "standard")
        strategy = AgingEvolutionStrategy(wrapped, ["ged"], {}, seed, population, tournament,
                                          crossover_prob=0.0 if method == "mutation" else 0.5,
                                          mutate_after_crossover=0.0)
    elif method == "reinforce":
        strategy = ReinforceStrategy(space, ["ged"], {}, seed, lr=0.1, momentum=0.9, normalise=False)
    else:
        strategy = RandomStrategy(space, ["ged"], {}, seed)
    t0 = time.perf_counter()
    best, curve, exact_best = np.inf, [], True
    while len(curve) < budget:
        asked = strategy.ask(1)
        if not asked:
            break
        g = asked[0]
        d, exact = ged(g)
        strategy.tell([EvaluationResult(g, {"ged": d})])
        if d < best:
            best, exact_best = d, exact
        curve.append(best)
    curve += [best] * (budget - len(curve))
    return {"setting": setting, "method": method, "seed": seed, "curve": curve, "exact_final": exact_best,
            "crossovers": wrapped.crossovers if wrapped else 0, "fallbacks": wrapped.fallbacks if wrapped else 0,
            "seconds": time.perf_counter() - t0}


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if np.allclose(x, y):
        return 1.0
    return float(wilcoxon(x, y, alternative="two-sided").pvalue)


def summarise(runs: list[dict], settings: list[str], budgets: dict[str, list[int]], seeds: int) -> dict:
    out: dict = {}
    for s in settings:
        rs = [r for r in runs if r["setting"] == s]
        methods: dict = {}
        final: dict[str, np.ndarray] = {}
        for m in METHODS:
            mr = sorted((r for r in rs if r["method"] == m), key=lambda r: r["seed"])
            if not mr:
                continue
            curves = np.array([r["curve"] for r in mr])
            methods[m] = {}
            for b in budgets[s]:
                v = curves[:, b - 1]
                methods[m][str(b)] = {"mean_ged": float(v.mean()), "se": float(v.std(ddof=1) / np.sqrt(len(v)))
                                      if len(v) > 1 else 0.0, "reached": float((v == 0).mean())}
            final[m] = curves[:, budgets[s][-1] - 1]
            xo = sum(r["crossovers"] for r in mr)
            if xo:
                methods[m]["crossover_fallback_share"] = sum(r["fallbacks"] for r in mr) / xo
            methods[m]["exact_final_share"] = float(np.mean([r["exact_final"] for r in mr]))
            methods[m]["seconds"] = float(sum(r["seconds"] for r in mr))
        doc = {"methods": methods, "seeds": seeds, "budgets": budgets[s],
               "final_by_seed": {m: [float(x) for x in v] for m, v in final.items()}}
        for other in ("standard", "mutation", "standard_renumbered"):
            if "sep" in final and other in final:
                diff = final["sep"] - final[other]
                doc[f"p_sep_vs_{other}"] = wilcoxon_p(final["sep"], final[other])
                doc[f"mean_diff_sep_minus_{other}"] = float(diff.mean())
                doc[f"se_diff_sep_minus_{other}"] = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        out[s] = doc
    return out


def print_summary(summary: dict) -> None:
    for s, doc in summary.items():
        methods = list(doc["methods"])
        print(f"\n== {s}: best GED to the target (mean ± s.e. over {doc['seeds']} seeds) [share of runs at GED 0] ==")
        print(f"{'evaluations':>11}  " + "  ".join(f"{m:>20}" for m in methods))
        for b in doc["budgets"]:
            cells = []
            for m in methods:
                c = doc["methods"][m][str(b)]
                cells.append(f"{c['mean_ged']:6.2f} ± {c['se']:4.2f} [{c['reached']:4.2f}]")
            print(f"{b:>11}  " + "  ".join(f"{c:>20}" for c in cells))
        for other in ("standard", "mutation", "standard_renumbered"):
            if f"p_sep_vs_{other}" in doc:
                print(f"sep - {other} at {doc['budgets'][-1]}: {doc[f'mean_diff_sep_minus_{other}']:+.2f} ± "
                      f"{doc[f'se_diff_sep_minus_{other}']:.2f} GED (Wilcoxon p = {doc[f'p_sep_vs_{other}']:.3g})")
        for m in methods:
            extra = doc["methods"][m]
            bits = [f"{extra['seconds']:.0f} s"]
            if "crossover_fallback_share" in extra:
                bits.append(f"crossover fell back to mutation {extra['crossover_fallback_share']:.1%}")
            if extra["exact_final_share"] < 1:
                bits.append(f"final GED exact in {extra['exact_final_share']:.0%} of runs")
            print(f"  {m}: " + "; ".join(bits))


def plot(runs: list[dict], settings: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4.2), squeeze=False)
    titles = {"dag": "NAS-Bench-101-style cell, target: NB101 optimum", "recurrent": "recurrent cell, target: LSTM",
              "recurrent_gru": "recurrent cell, target: GRU"}
    for ax, s in zip(axes[0], settings):
        for m in METHODS:
            mr = [r for r in runs if r["setting"] == s and r["method"] == m]
            if not mr:
                continue
            c = np.array([r["curve"] for r in mr])
            mean, se = c.mean(0), c.std(0, ddof=1) / np.sqrt(len(c)) if len(c) > 1 else 0 * c.mean(0)
            x = np.arange(1, c.shape[1] + 1)
            ax.plot(x, mean, label=m)
            ax.fill_between(x, mean - se, mean + se, alpha=0.2)
        ax.set_title(titles[s], fontsize=10)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best GED to target")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--methods", default=",".join(METHODS[:5]),
                    help=f"of {', '.join(METHODS)} (standard_renumbered: dag only, standard crossover of parents "
                         "under random numberings)")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--dag-budgets", default="100,200,500,1000,2000")
    ap.add_argument("--rnn-budgets", default="100,200,500,1000")
    ap.add_argument("--population", type=int, default=100)
    ap.add_argument("--tournament", type=int, default=10)
    ap.add_argument("--lstm-expansions", type=int, default=EXPANSIONS["recurrent"],
                    help="partial mappings the exact GED search may expand per GED on the LSTM setting")
    ap.add_argument("--gru-expansions", type=int, default=EXPANSIONS["recurrent_gru"],
                    help="the same on the GRU setting")
    ap.add_argument("--target", type=Path, default=DEFAULT_TARGET, help="NAS-Bench-101 ModelSpec JSON of the dag target")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    a = ap.parse_args(argv)
    settings = [s for s in a.settings.split(",") if s]
    methods = [m for m in a.methods.split(",") if m]
    bad = [s for s in settings if s not in SETTINGS] + [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown setting(s)/method(s) {bad}; settings {list(SETTINGS)}, methods {list(METHODS)}")
    if "standard_renumbered" in methods and any(st != "dag" for st in settings):
        ap.error("standard_renumbered applies to the dag setting only (recurrent cells have no renumbering)")
    try:
        budgets = {s: sorted(int(b) for b in (a.dag_budgets if s == "dag" else a.rnn_budgets).split(","))
                   for s in settings}
    except ValueError:
        ap.error("budgets must be comma-separated integers")
    if any(b[0] < 1 for b in budgets.values()) or a.seeds < 2 or a.tournament > a.population:
        ap.error("budgets must be >= 1, --seeds >= 2 and --tournament <= --population")
    expansions = {"recurrent": a.lstm_expansions, "recurrent_gru": a.gru_expansions}
    jobs = [(s, m, seed, budgets[s][-1], str(a.target), expansions, a.population, a.tournament)
            for s in settings for seed in range(a.seeds) for m in methods]
    t0 = time.perf_counter()
    runs: list[dict] = []
    with Pool(a.workers) as pool:
        for k, r in enumerate(pool.imap_unordered(run_one, jobs), 1):
            runs.append(r)
            print(f"[{k}/{len(jobs)}] {r['setting']} {r['method']} seed {r['seed']}: best GED {r['curve'][-1]:.0f} "
                  f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
    summary = summarise(runs, settings, budgets, a.seeds)
    print_summary(summary)
    print(f"\n{time.perf_counter() - t0:.0f} s in all ({a.workers} worker processes)")
    if a.json:
        doc = {**summary, "settings": {"population": a.population, "tournament": a.tournament,
                                       "ged_expansions": expansions, "target": str(a.target),
                                       "command": "python benchmarks/sep_permutation.py " + " ".join(argv or sys.argv[1:])}}
        tmp = a.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(a.json)
    if a.plot:
        plot(runs, settings, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
