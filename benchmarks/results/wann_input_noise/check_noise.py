"""Session 25: the input-noise tuning (sigma chosen on the 1,000-generation lineages' validation
images) on networks that chose nothing: session 21's 400-generation lineages on their own splits
(seeds 1-4) and on seed 0's split (search seeds 1-3). Each reported network tuned exactly as the
select stage tunes (nas.wann.select.tune_selected_classifier), without and with the noise.
usage: check_noise.py SIGMA STEPS DIR:KEY=V,KEY=V ..."""
import json, os, sys, pathlib
import numpy as np
sys.path.insert(0, os.getcwd())
from nas.config import load_config
from nas.genome import Genome, candidate_seed
from nas.wann.select import _split_seed, front_table, scores, task_and_space, val_scores, tune_selected_classifier
from nas.wann.tune import best_shared_weight

sigma, steps = float(sys.argv[1]), int(sys.argv[2])
out = {}
for arg in sys.argv[3:]:
    run, sets = arg.split(":")
    sets = sets.split(",")
    m = json.load(open(sorted(pathlib.Path(run).glob("reports/*/metrics.json"))[0]))
    here = os.getcwd(); os.chdir(run)
    cfg = load_config(os.path.join(here, "examples/wann_digits.yaml"), sets)
    task, space = task_and_space(cfg)
    all_df, _ = front_table(cfg)
    os.chdir(here)
    r = all_df[all_df.candidate_id == m["reported_model"]].iloc[0]
    g = Genome.from_json(r["genome"], space.name); spec = space.spec(g)
    vs, ts = _split_seed(cfg.seed, g, "val"), _split_seed(cfg.seed, g, "test")
    wb, _ = best_shared_weight(lambda ws: val_scores(task, spec, ws, vs, cfg.evaluation.wann.rollouts))
    row = {}
    for name, upd in (("select stage", {}), (f"noise {sigma} x{steps}", {"tune_input_noise": sigma, "tune_steps": steps})):
        ev = cfg.evaluation.wann.model_copy(update=upd)
        w = tune_selected_classifier(task, spec, wb, ev, candidate_seed(cfg.seed, g))
        row[name] = {s: float(scores(task, spec, w[None, :], s, vs if s == "val" else ts)[0]) for s in ("train", "val", "test")}
        print(f"{run} {m['reported_model']} {name:18s} " + " ".join(f"{s} {row[name][s]:.4f}" for s in ("train", "val", "test")), flush=True)
    assert abs(row["select stage"]["test"] - m["test_tuned_weights"]) < 1e-9, (row, m["test_tuned_weights"])
    out[run] = row
print("\nmean over the networks")
for name in next(iter(out.values())):
    print(f"{name:18s} " + " ".join(f"{s} {np.mean([out[k][name][s] for k in out]):.4f}" for s in ("train", "val", "test")))
json.dump(out, open(os.environ.get("OUT", "benchmarks/results/wann_input_noise/check.json"), "w"), indent=1)
