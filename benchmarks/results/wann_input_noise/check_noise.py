"""Session 25: the input-noise tuning (sigma chosen on the 1,000-generation lineages' validation
images) on networks that chose nothing: session 21's 400-generation lineages on their own splits
(seeds 1-4) and on seed 0's split (search seeds 1-3). Each reported network tuned exactly as the
select stage tunes (nas.wann.select.tune_selected_classifier), with its session-24 settings (300
steps, no noise) and with the noise.
usage: check_noise.py SIGMA STEPS DIR:KEY=V,KEY=V ..."""
import json, os, sys, pathlib
import numpy as np
sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "benchmarks")]
from nas.genome import candidate_seed
from nas.wann.select import scores, tune_selected_classifier
from wann_lineages import reported_network

sigma, steps = float(sys.argv[1]), int(sys.argv[2])
out = {}
for arg in sys.argv[3:]:
    run, sets = arg.split(":")
    sets = sets.split(",")
    n = reported_network(pathlib.Path(run), pathlib.Path("examples/wann_digits.yaml"), sets)
    m, cfg, task, spec, g, vs, ts, wb = (n[k] for k in ("metrics", "cfg", "task", "spec", "genome", "val_seed",
                                                        "test_seed", "w_best"))
    row = {}
    for name, upd in (("select stage", {"tune_input_noise": 0.0, "tune_steps": 300}), (f"noise {sigma} x{steps}", {"tune_input_noise": sigma, "tune_steps": steps})):
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
