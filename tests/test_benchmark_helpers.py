"""The statistics two benchmarks use to read their targets: the reliability of a noisy
stand-alone reference (``supernet_ranking.py``) and the cross-seed reach calibration of the
scale benchmark (``scale.py``)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_reliability_predicts_what_a_perfect_predictor_reaches():
    ranking = _load("supernet_ranking")
    rng = np.random.default_rng(0)
    n, seeds, true_sd, noise_sd = 400, 4, 0.03, 0.03
    truth = 0.6 + true_sd * rng.standard_normal(n)
    runs = truth[:, None] + noise_sd * rng.standard_normal((n, seeds))
    rows = [{"runs": [{"val": float(v)} for v in r]} for r in runs]
    rel = ranking.reference_reliability(rows, n_val=544)
    assert abs(rel["within_sd"] - noise_sd) < 0.003 and abs(rel["true_between_sd"] - true_sd) < 0.004
    assert abs(rel["icc_single_seed"] - 0.5) < 0.08
    # the truth itself is the perfect predictor: its tau against the references matches the estimate
    assert abs(kendalltau(truth, runs[:, 0]).statistic - rel["expected_tau_perfect_vs_one_seed"]) < 0.06
    assert abs(kendalltau(truth, runs.mean(axis=1)).statistic - rel["expected_tau_perfect_vs_mean"]) < 0.06
    assert rel["expected_tau_perfect_vs_mean"] > rel["expected_tau_perfect_vs_one_seed"]
    assert ranking.reference_reliability([{"runs": [{"val": 0.5}]}] * 3, 100) == {}, "one seed: no estimate"


def test_cross_seed_reach_counts_pairs_of_different_seeds_only():
    scale = _load("scale")
    gen = [{"strategy": "aging", "seed": s, "hv_at_budget": hv} for s, hv in enumerate([0.80, 0.82, 0.84])]
    longer = [{"strategy": "aging", "seed": s, "final_hv": hv} for s, hv in enumerate([0.81, 0.83, 0.85])]
    asynch = [{"strategy": "aging", "seed": s, "final_hv": hv} for s, hv in enumerate([0.84, 0.79, 0.82])]
    out = scale.cross_seed_reach(asynch, gen, longer)
    # longer runs: seed 0 (0.81) reaches seed 1? no, seed 2? no; seed 1 (0.83) reaches 0 and not 2;
    # seed 2 (0.85) reaches 0 and 1 -> 3 of 6 pairs
    assert out["reach_cross_gen"] == 0.5
    # async: seed 0 (0.84) reaches 1 and 2; seed 1 (0.79) none; seed 2 (0.82) reaches 0 and 1 -> 4 of 6
    assert abs(out["reach_cross_async"] - 4 / 6) < 1e-12
    assert scale.cross_seed_reach(asynch, gen, [])["reach_cross_gen"] is None


def test_report_hypervolume_scores_the_front_searched_on_not_the_report_columns_own():
    """The members non-dominated in (searched error, cost) are scored by (report error, cost); a point
    with the best report error but off the searched front does not count."""
    scale = _load("scale")
    pts = [(0.2, 0.5, 0.10),   # on the searched front
           (0.1, 0.9, 0.05),   # on the searched front
           (0.3, 0.6, 0.01),   # dominated by the first in the search: its report error must not count
           (0.2, 0.5, 0.00)]   # ties the first in the search, evaluated later: not a second member
    hv = scale.report_hv(pts)
    # report points (0.10, 0.5) and (0.05, 0.9): (0.10-0.05)*(1-0.9) + (1-0.10)*(1-0.5)
    assert abs(hv - (0.05 * 0.1 + 0.9 * 0.5)) < 1e-12
    assert scale.report_hv([]) == 0.0


NB201_CSV = ROOT.parent / "shared" / "benchdata" / "nb201_cifar10.csv"


@pytest.mark.skipif(not NB201_CSV.is_file(), reason="needs ../shared/benchdata/nb201_cifar10.csv")
def test_the_scale_benchmark_runs_every_strategy_in_both_modes_and_refuses_unknown_ones(tmp_path):
    out = tmp_path / "scale.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--table", str(NB201_CSV), "--workers", "4",
           "--seeds", "1", "--budget-per-worker", "3", "--jobs", "1", "--no-calibrate"]
    run = subprocess.run(cmd + ["--strategies", "aging,nsga2,thompson", "--json", str(out)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rec = json.loads(out.read_text())
    runs = rec["per_run"]
    assert {(r["strategy"], r["mode"]) for r in runs} == {(s, m) for s in ("aging", "nsga2", "thompson")
                                                          for m in ("generational", "async")}
    for r in runs:  # generational: 3 generations of W (NSGA-II answers a repeated offspring from its archive,
        # so it may evaluate fewer); async: 1.5 times 3 W
        assert (8 <= r["evaluations"] <= 12) if r["mode"] == "generational" else r["evaluations"] == 18
        assert 0 < r["final_hv"] <= 0.8155 and r["utilisation"] > 0
        # async cancels at the budget (work that gave nothing); generational's last generation releases workers
        assert r["utilisation_useful"] < r["utilisation_held"] if r["mode"] == "async" else \
            r["utilisation_useful"] == r["utilisation_held"] > r["utilisation"]
    assert set(rec["summary"]["4"]) >= {"util_async", "util_gen", "speedup_median", "speedup_worst",
                                        "driver_overhead_fraction", "util_async_held", "util_async_useful"}
    bad = subprocess.run(cmd + ["--strategies", "aging,tompson"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "tompson" in bad.stderr
    bad = subprocess.run(cmd + ["--strategies", "thompson", "--thompson-options", '{"nois": 0.2}'], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "takes no nois" in bad.stderr



def test_codeepneat_at_scale_keeps_evolving_with_more_networks_in_flight_than_members(tmp_path):
    """K = 16 networks in flight against 10 blueprints and 20 modules: the async run's populations are
    replaced by offspring (before the retiring of in-flight members, no blueprint was born after the
    first ten), and bad arguments exit 2 naming what is wrong."""
    out = tmp_path / "cdn.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "scale_codeepneat.py"), "--workers", "16", "--seeds", "1",
           "--budget-per-worker", "3"]
    run = subprocess.run(cmd + ["--json", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rec = json.loads(out.read_text())
    runs = {r["mode"]: r for r in rec["per_run"]}
    assert runs["generational"]["evaluations"] == 48 and runs["async"]["evaluations"] == 72
    assert runs["async"]["blueprints_born"] >= 10 + 16 and runs["async"]["retired_max"] > 0
    assert runs["generational"]["retired_max"] == 0  # nothing is in flight when a generation is told
    s = rec["summary"]["16"]
    assert s["util_async"] > s["util_gen"] and 0 < s["hv_gen"] < 1 and s["driver_overhead_fraction"] < 0.05
    bad = subprocess.run(cmd + ["--sigma", "-1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--sigma" in bad.stderr

@pytest.mark.skipif(not NB201_CSV.is_file(), reason="needs ../shared/benchdata/nb201_cifar10.csv")
def test_the_simulated_clock_replays_a_real_clusters_generational_search(tmp_path):
    """sim_fidelity.py on a real two-worker LocalCluster: a generational search proposes the same
    architectures on the simulated clock as on the real workers (each generation is told in the
    order it was asked), and the two wall times and utilisations are of the same size."""
    out = tmp_path / "fidelity.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sim_fidelity.py"), "--table", str(NB201_CSV),
                          "--workers", "2", "--strategies", "aging", "--seeds", "1", "--budget", "8",
                          "--d-min", "0.05", "--d-max", "0.3", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    runs = {r["mode"]: r for r in json.loads(out.read_text())["runs"]}
    gen, asy = runs["generational"], runs["async"]
    assert gen["identical"] and gen["shared"] == 1.0 and gen["hv_real"] == gen["hv_sim"]
    assert gen["evaluations_real"] == gen["evaluations_sim"] == asy["evaluations_real"] == 8
    for r in (gen, asy):
        assert 0 < r["utilisation_real"] <= 1.0 + 1e-6 and 0 < r["utilisation_sim"] <= 1.0 + 1e-9
        assert 0.5 < r["wall_ratio"] < 3 and r["driver_per_eval_s"] >= 0
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sim_fidelity.py"), "--table", str(NB201_CSV),
                          "--strategies", "nsga2"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "aging and/or thompson" in bad.stderr


def test_the_tables_front_keeps_exact_ties_and_drops_dominated_rows():
    scale = _load("scale")
    err = np.array([0.3, 0.1, 0.2, 0.1, 0.4, 0.2, 0.1])
    cost = np.array([0.1, 0.9, 0.5, 0.9, 0.05, 0.6, 0.95])
    # rows 1 and 3 tie exactly; row 5 is dominated by row 2, row 6 by row 1
    assert scale.table_front(err, cost) == [0, 1, 2, 3, 4]


def test_neighbours_at_one_and_two_edges_of_a_cell():
    front = _load("nb201_front")
    codes = [tuple(c) for c in np.ndindex(3, 3, 3)]
    index = {c: i for i, c in enumerate(codes)}
    one = front.neighbours((0, 1, 2), index, 3, 1)
    two = front.neighbours((0, 1, 2), index, 3, 2)
    assert len(one) == 3 * 2 and len(two) == 3 * 2 * 2
    assert all(sum(a != b for a, b in zip(codes[j], (0, 1, 2))) == 1 for j in one)
    assert all(sum(a != b for a, b in zip(codes[j], (0, 1, 2))) == 2 for j in two)
    # cells missing from the table are skipped
    del index[(1, 1, 2)]
    assert len(front.neighbours((0, 1, 2), index, 3, 1)) == 5


def test_combining_supernets_averages_their_scores_and_refuses_other_subnets():
    import pytest

    ranking = _load("supernet_ranking")
    rng = np.random.default_rng(1)
    n = 200
    truth = rng.standard_normal(n)
    ids = [f"c{i}" for i in range(n)]

    def run(noise_seed: int, repeats: int) -> dict:
        noisy = truth + np.random.default_rng(noise_seed).standard_normal(n)
        return {"dataset_hash": "h", "subnets": [
            {"candidate_id": c, "inherited_val": float(v), "runs": [{"val": float(t)}] * repeats}
            for c, v, t in zip(ids, noisy, truth)]}

    runs = [run(10, 1), run(11, 4), run(12, 1)]
    out = ranking.combine(runs)
    assert out["supernets"] == 3 and out["reference_repeats"] == 4 and len(out["kendall_tau_between_supernets"]) == 3
    # three independent noisy scores: their mean ranks the truth better than any one of them
    assert out["kendall_tau_mean"] > max(out["kendall_tau_each"]) + 0.05
    assert out["kendall_tau_each"][0] == pytest.approx(kendalltau([r["inherited_val"] for r in runs[0]["subnets"]],
                                                                  truth).statistic)
    assert "kendall_tau_mean_soft" not in out  # outputs from before the soft accuracy was measured
    for k, r in enumerate(runs):  # with a soft accuracy in every output, it is ranked the same way
        for row in r["subnets"]:
            row["inherited_soft_val"] = -row["inherited_val"] if k == 0 else row["inherited_val"]
    soft = ranking.combine(runs)
    assert soft["kendall_tau_each_soft"][0] == pytest.approx(-out["kendall_tau_each"][0])
    assert soft["kendall_tau_each_soft"][1:] == pytest.approx(out["kendall_tau_each"][1:])
    runs[2]["subnets"][0]["candidate_id"] = "other"
    with pytest.raises(ValueError, match="other subnets"):
        ranking.combine(runs)
    with pytest.raises(ValueError, match="other data"):
        ranking.combine([runs[0], {**runs[1], "dataset_hash": "x"}])


def test_the_stand_alone_soft_diagnostic_needs_every_run_to_have_measured_it():
    import pytest

    ranking = _load("supernet_ranking")
    rng = np.random.default_rng(2)
    n = 50
    truth = rng.standard_normal(n)
    rows = [{"inherited_val": float(-t), "inherited_soft_val": float(t),
             "runs": [{"val": float(t), "val_soft": float(t + 0.1 * e)} for e in rng.standard_normal(2)]}
            for t in truth]
    out = ranking.against_standalone_soft(rows)
    ref = [np.mean([x["val_soft"] for x in r["runs"]]) for r in rows]
    assert out["kendall_tau_soft_vs_standalone_soft"] == pytest.approx(kendalltau(truth, ref).statistic)
    assert out["kendall_tau_vs_standalone_soft"] == pytest.approx(-out["kendall_tau_soft_vs_standalone_soft"])
    assert 0.8 < out["noise_ceiling_tau_soft"] < 1 and rows[0]["standalone_soft_val"] == pytest.approx(ref[0])
    rows[3]["runs"].append({"val": 0.5})  # a run reused from a reference made before the soft accuracy
    assert ranking.against_standalone_soft(rows) == {}


def test_the_deployed_diagnostic_ranks_against_the_fine_tuned_networks_and_needs_them_all():
    ranking = _load("supernet_ranking")
    dval = [0.60, 0.62, 0.70, 0.65, 0.75]  # the order of both inherited scores
    rows = [{"params": p, "inherited_val": iv, "inherited_soft_val": sv,
             "runs": [{"val": v - 0.05, "test": v - 0.04}],
             "deployed_runs": [{"val": v, "test": v + 0.01}, {"val": v + 0.001 * k, "test": v + 0.02}]}
            for k, (p, iv, sv, v) in enumerate(zip([10, 20, 30, 40, 50], [0.5, 0.52, 0.6, 0.55, 0.7],
                                                   [0.40, 0.41, 0.50, 0.45, 0.55], dval))]
    d = ranking.against_deployed(rows)["deployed"]
    means = [r["deployed_val"] for r in rows]
    assert np.allclose(means, [v + 0.0005 * k for k, v in enumerate(dval)])
    assert d["repeats"] == 2 and np.isclose(d["kendall_tau_soft"], 1.0) and np.isclose(d["kendall_tau"], 1.0)
    assert abs(d["kendall_tau_params"] - kendalltau([10, 20, 30, 40, 50], means).statistic) < 1e-12
    assert np.isclose(d["kendall_tau_vs_standalone_val"], 1.0) and d["subnets_testing_better_deployed"] == 5
    assert abs(d["mean_test"] - (np.mean(dval) + 0.015)) < 1e-9
    assert abs(d["standalone_mean_test"] - (np.mean(dval) - 0.04)) < 1e-9
    assert abs(d["spread_test"] - 0.15) < 1e-9 and np.isclose(d["noise_ceiling_tau"], 1.0)
    dtest = [v + 0.015 for v in dval]  # the test figures keep the order: every test tau is 1 (params' as above)
    assert np.isclose(d["test_kendall_tau_soft"], 1.0) and np.isclose(d["kendall_tau_val_vs_test"], 1.0)
    assert abs(d["test_kendall_tau_params"] - kendalltau([10, 20, 30, 40, 50], dtest).statistic) < 1e-12
    rows[2]["deployed_runs"] = []
    assert ranking.against_deployed(rows) == {} and ranking.against_deployed([]) == {}


def _wann_metrics(seed, val_tuned, test_tuned, search_seed=None, conns=300, val_ens=0.85, n=1000, task="classify"):
    m = {"candidate_id": f"net{seed}-{search_seed}", "connections": conns, "ensemble": {"val": val_ens, "test": 0.8},
         "tuned_weights": {"mean": test_tuned, "val": val_tuned}}
    out = {"task": task, "metric": "accuracy" if task == "classify" else "return", "seed": seed, "n_evaluated": n,
           "reported_model": m["candidate_id"], "selected_models": [m], "stage_seconds": {"search": 1.0}}
    if search_seed is not None:
        out["search_seed"] = search_seed
    return out


def test_wann_lineages_keep_the_best_on_validation_and_refuse_what_is_not_comparable():
    lin = _load("wann_lineages")
    rows = [lin.lineage(_wann_metrics(s, v, t), f"run{s}") for s, v, t in [(0, 0.90, 0.95), (1, 0.93, 0.88), (2, 0.92, 0.99)]]
    kept = lin.choose(rows)
    assert kept["seed"] == 1 and kept["test_tuned"] == 0.88, "validation chooses, never test"
    # ties on validation: the better validation ensemble, then fewer connections
    tie = [lin.lineage(_wann_metrics(0, 0.9, 0.9, search_seed=s, conns=c, val_ens=e), "r")
           for s, c, e in [(1, 300, 0.80), (2, 250, 0.85), (3, 200, 0.85)]]
    assert lin.choose(tie)["search_seed"] == 3
    # one split, several search seeds; a run from before search.seed existed reads its seed as its search seed
    assert lin.lineage(_wann_metrics(4, 0.9, 0.9), "r")["search_seed"] == 4
    with pytest.raises(ValueError, match="separate searches"):
        lin.choose([rows[0], lin.lineage(_wann_metrics(0, 0.95, 0.9), "again")])
    with pytest.raises(ValueError, match="different numbers"):
        lin.choose([rows[0], lin.lineage(_wann_metrics(5, 0.95, 0.9, n=2000), "longer")])
    with pytest.raises(ValueError, match="at least two"):
        lin.choose(rows[:1])
    with pytest.raises(ValueError, match="not a WANN classification run"):
        lin.lineage(_wann_metrics(0, 0.9, 0.9, task="control"), "swingup")
    with pytest.raises(ValueError, match="tuned weights"):
        lin.lineage({**_wann_metrics(0, 0.9, 0.9), "reported_model": "other"}, "r")


def test_wann_lineages_cli_reads_run_folders_and_fails_clearly(tmp_path):
    runs = []
    for s, v in [(0, 0.91), (1, 0.94)]:
        d = tmp_path / f"W{s}" / "reports" / "wann_digits"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps(_wann_metrics(s, v, 0.9)))
        runs.append(str(tmp_path / f"W{s}"))
    out = tmp_path / "lineages.json"
    script = str(ROOT / "benchmarks" / "wann_lineages.py")
    r = subprocess.run([sys.executable, script, *runs, "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["kept"]["seed"] == 1 and not doc["one_split"] and len(doc["lineages"]) == 2
    bad = subprocess.run([sys.executable, script, runs[0], str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and "expected one reports/*/metrics.json" in bad.stderr


def test_worker_times_count_only_the_worker_time_inside_the_window():
    """sim_fidelity.py's reading of the worker time a real cluster held: each worker from when it
    joined (or watching began) to when it left (or the window's end), clipped to the window."""
    import types

    fid = _load("sim_fidelity")
    watch = fid.WorkerTimes(types.SimpleNamespace(workers={"a": None, "b": None}))
    t0 = watch.up["a"]
    watch.up.update(a=t0 - 10, b=t0)  # a joined before the window opens at t0
    watch.remove_worker(worker="b")
    watch.spans[-1] = (t0, t0 + 2)  # b held 2 s, then left
    watch.add_worker(worker="c")
    watch.up["c"] = t0 + 3  # c joined at t0 + 3 and is still up at the end
    assert watch.held(t0, t0 + 5) == pytest.approx(5 + 2 + 2)
    watch.remove_worker(worker="ghost")  # never seen joining: nothing to count
    assert len(watch.spans) == 1
