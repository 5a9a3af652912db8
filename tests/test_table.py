"""The tabular evaluator, hypervolume fractions, strategies on a synthetic table, and the peers."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas import benchmark as bm
from nas.evaluators import evaluate
from nas.evaluators.table import TableError, TableEvaluator, load_table
from nas.objectives import count_params
from nas.spaces.nb201 import NB201Space, format_arch, parse_arch
from nas.spaces.nb201_build import build_nb201

from tests.conftest import OPTIMUM, synthetic_table_sets  # noqa: E402  (the synthetic table: optimum, settings)


def test_evaluator_reads_renamed_columns(synthetic):
    ev = TableEvaluator(str(synthetic), "cheap_acc", "final_acc", ("lat_ms", "params"), arch_column="cell")
    df = pd.read_csv(synthetic)
    row = df.iloc[17]
    g = parse_arch(row["cell"])
    m = evaluate(ev, g).metrics
    assert m["val_accuracy"] == pytest.approx(row["cheap_acc"]) and m["report_accuracy"] == pytest.approx(row["final_acc"])
    assert m["lat_ms"] == pytest.approx(row["lat_ms"])
    assert m["params"] == count_params(build_nb201(g))
    assert len(ev.table()) == 5 ** 6


def test_simulated_duration(synthetic):
    ev = TableEvaluator(str(synthetic), "cheap_acc", "final_acc", arch_column="cell", sim_seconds=0.001,
                        sim_seconds_column="lat_ms", sim_scale=0.001)
    g = NB201Space().largest()
    lat = float(pd.read_csv(synthetic).set_index("cell").loc[format_arch(g), "lat_ms"])
    assert ev.duration(g) == pytest.approx(0.001 + 0.001 * lat)
    r = evaluate(ev, g)
    assert r.eval_seconds >= ev.duration(g)


@pytest.mark.parametrize("mutate, needle", [
    (lambda df: df.drop(columns=["lat_ms"]), "missing column"),
    (lambda df: df.assign(cell=df.cell.where(df.index != 3, "|bogus~0|")), "row 3"),
    (lambda df: pd.concat([df, df.iloc[:1]]), "twice"),
    (lambda df: df.assign(cheap_acc=df.cheap_acc.where(df.index != 5, None)), "no empty cells"),
])
def test_bad_tables_are_clear_errors(synthetic, tmp_path, mutate, needle):
    bad = tmp_path / "bad.csv"
    mutate(pd.read_csv(synthetic)).to_csv(bad, index=False)
    with pytest.raises(TableError, match=needle):
        load_table(bad, "cell", "cheap_acc", "final_acc", ("lat_ms",))
    with pytest.raises(TableError, match="does not exist"):
        load_table(tmp_path / "nope.csv", "cell", "cheap_acc", "final_acc")


def test_hv_fraction_is_one_for_the_true_front(synthetic):
    spec = bm.BenchmarkSpec(str(synthetic), "cheap_acc", "final_acc", ("lat_ms",), "cell")
    table = spec.evaluator().table()
    ref = bm.table_hypervolume(table, spec)
    from nas.pareto import non_dominated

    pts = bm._hv_points(table, spec, np.arange(len(table)))
    front = non_dominated(pts)
    assert bm.hv_fraction(table, spec, front, ref) == pytest.approx(1.0)
    assert bm.hv_fraction(table, spec, np.arange(len(table)), ref) == pytest.approx(1.0)
    assert bm.hv_fraction(table, spec, front[:1], ref) < 1.0


@pytest.mark.parametrize("strategy", ["evonas-aging", "evonas-aging-sep", "evonas-aging-elitist", "evonas-nsga2",
                                      "evonas-msunas", "evonas-local", "evonas-thompson"])
def test_our_strategies_find_the_optimum_of_a_synthetic_table(synthetic, strategy):
    spec = bm.BenchmarkSpec(str(synthetic), "final_acc", "final_acc", (), "cell")
    table = spec.evaluator().table()
    job = bm.run_job(strategy, spec, seed=0, budget=150)  # seed 0 reaches the optimum within 28-102 of them
    assert len(job["order"]) >= 150 and len(set(job["order"])) == len(job["order"])
    best = table.genomes[job["order"][int(np.argmax(table.signal[job["order"]]))]]
    assert best.values == OPTIMUM


@pytest.mark.parametrize("strategy", bm.ALL)
def test_every_strategy_and_peer_runs_with_costs(synthetic, strategy):
    spec = bm.BenchmarkSpec(str(synthetic), "cheap_acc", "final_acc", ("lat_ms",), "cell")
    table = spec.evaluator().table()
    job = bm.run_job(strategy, spec, seed=3, budget=30)
    rows = bm.score(job, table, spec, [10, 30], bm.table_hypervolume(table, spec))
    assert [r["budget"] for r in rows] == [10, 30]
    assert all(0 < r["hv_fraction"] <= 1 for r in rows)
    assert rows[1]["best_report"] >= rows[0]["best_report"] - 10  # a real table value
    assert rows[1]["best_report"] in set(table.report)


def test_random_peer_exhausts_the_table(synthetic):
    spec = bm.BenchmarkSpec(str(synthetic), "final_acc", "final_acc", (), "cell")
    job = bm.run_job("random", spec, seed=0, budget=5 ** 6)
    assert sorted(job["order"]) == list(range(5 ** 6))


def test_benchmark_cli(synthetic, tmp_path):
    exe = str(Path(sys.executable).parent / "evonas")
    out = tmp_path / "results.csv"
    proc = subprocess.run([exe, "benchmark", "--table", str(synthetic), "--arch-column", "cell",
                           "--signal-column", "cheap_acc", "--report-column", "final_acc", "--cost-columns", "lat_ms",
                           "--budgets", "10,20", "--seeds", "2", "--first-seed", "5",
                           "--strategies", "random,evonas-aging,optuna-tpe",
                           "--workers", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    df = pd.read_csv(out)
    assert list(df.columns) == ["strategy", "seed", "budget", "best_report", "hv_fraction", "seconds"]
    assert len(df) == 3 * 2 * 2
    assert sorted(set(df["seed"])) == [5, 6]
    for s in ("random", "evonas-aging", "optuna-tpe"):
        assert f"{s}: best_report" in proc.stdout
    bad = subprocess.run([exe, "benchmark", "--table", str(synthetic), "--arch-column", "cell",
                          "--signal-column", "nope", "--report-column", "final_acc", "--out", str(tmp_path / "x.csv")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nope" in bad.stderr and not (tmp_path / "x.csv").exists()


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["generational", "async"])
def test_evonas_run_with_the_table_evaluator(synthetic, tmp_path, mode, runs_api):
    """`evaluation.kind: table` through the real pipeline flow (Prefect + Dask), no supernet;
    in both search modes (async: K=6 in flight, updates every M=2 results)."""
    import json
    import os

    from tests.conftest import ROOT

    exe = str(Path(sys.executable).parent / "evonas")
    sets = [*synthetic_table_sets(synthetic), "search.strategy=thompson", "search.population=8",
            "search.generations=3", "evaluation.table.sim_seconds=0.01", f"search.mode={mode}",
            "search.async.in_flight=6", "search.async.batch=2"]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / ".prefect"), "PREFECT_API_URL": runs_api}
    proc = subprocess.run([exe, "run", "--params", str(ROOT / "params.yaml")] + [a for s in sets for a in ("--set", s)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "artifacts/supernet").exists() and not (tmp_path / "data").exists()
    front = pd.read_csv(tmp_path / "artifacts/select/pareto.csv")
    assert {"lat_ms", "report_accuracy", "test_accuracy"} <= set(front.columns)
    sel = front[front.selected]
    assert (sel.test_accuracy == sel.report_accuracy).all()
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert set(metrics["stage_seconds"]) == {"search", "select"} and metrics["n_evaluated"] == 32
    pops = sorted((tmp_path / "artifacts/search/populations").glob("gen_*.parquet"))
    assert len(pops) == (4 if mode == "generational" else 16) and (pd.read_parquet(pops[0]).eval_seconds >= 0.01).all()
    summary = json.loads((tmp_path / "artifacts/search/summary.json").read_text())
    assert summary["mode"] == mode
    if mode == "async":
        assert summary["async"]["cancelled"] >= 1 and "submitted_at" in pd.read_parquet(pops[-1]).columns
    for cid in sel.candidate_id:
        card = json.loads((tmp_path / f"artifacts/select/models/{cid}.json").read_text())
        assert card["architecture"].startswith("|") and card["report_column"] == "final_acc"


def test_seed_blocks_counts_block_winners(tmp_path):
    """benchmarks/seed_blocks.py: per-block means and block wins from benchmark results."""
    from tests.conftest import ROOT

    rows = []
    for seed in range(45):  # 2 full blocks of 20 and a remainder of 5 (left out of the counts)
        a = 0.9 if seed < 20 else 0.5  # A wins block 0, B wins block 1
        rows += [{"strategy": "A", "seed": seed, "budget": 10, "best_report": 1.0, "hv_fraction": a},
                 {"strategy": "B", "seed": seed, "budget": 10, "best_report": 1.0, "hv_fraction": 0.7}]
    csv = tmp_path / "r.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    script = str(ROOT / "benchmarks" / "seed_blocks.py")
    proc = subprocess.run([sys.executable, script, str(csv), "--block", "20"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2 blocks of 20" in proc.stdout
    lines = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.startswith("  ")}
    assert "best in 1/2 blocks  [0.90000 0.50000]" in lines["A"]
    assert "best in 1/2 blocks  [0.70000 0.70000]" in lines["B"]
    bad = subprocess.run([sys.executable, script, str(csv), "--metric", "hv_fraction", "--block", "50"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no block of 50 seeds" in bad.stderr
