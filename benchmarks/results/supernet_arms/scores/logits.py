"""Session 23 (recorded copy; ran from scratch/score/): inherited validation logits of the recorded
(subnet seed 99), held-out (7) and fresh (23) subnet sets for the default-recipe supernets of seeds
0, 1, 2 (`base`, `base_s1`, `base_s2` of session 20, `../elastic/arm.sh`), BatchNorm recalibrated
exactly as the search's evaluator does, saved to npz with the sets' existing 2-seed stand-alone
references (nothing stand-alone retrained). The printed check compares the soft accuracy at T = 1
with the seed-0 supernet's recorded figures, so it is ~1e-7 for `base` only.
Usage: python logits.py base base_s1 base_s2; then python analyse.py base base_s1 base_s2 > summary.txt"""
import json, sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, '/work/main')
from nas.config import load_config
from nas.data import load_prepared
from nas.genome import candidate_seed
from nas.spaces.elastic_build import extract_subnet
from nas.strategies.base import size_stratified
from nas.supernet import load_supernet
from nas.training import recalibrate_bn

torch.set_num_threads(2)
E = Path('/work/main/benchmarks/results/supernet_arms/elastic')
SETS = {'rec': 99, 'ho': 7, 'f23': 23}
for sup in sys.argv[1:]:
    cfg = load_config('/work/main/params.yaml', ['data.out_dir=/work/main/scratch/a2/data', f'supernet.out_dir=/work/main/scratch/a2/{sup}'])
    bundle = load_supernet(cfg.supernet.out_dir); data = load_prepared(cfg.data.out_dir); space = bundle.space
    ev = cfg.evaluation
    for name, ss in SETS.items():
        ref = json.loads((E / f'base.{name}.json').read_text())
        genomes = size_stratified(space, np.random.default_rng([cfg.seed, ss]), 24, lambda g: bundle.costs(g)['params'])
        ids = [g.key() if hasattr(g, 'key') else None for g in genomes]
        out = {'val_logits': [], 'train_logits': [], 'soft_json': [], 'sa': [], 'params': [], 'lastw': []}
        for g, row in zip(genomes, ref['subnets']):
            seed = candidate_seed(cfg.seed, g)
            net = extract_subnet(bundle.net, g)
            recalibrate_bn(net, data.x_train, ev.bn_batches, ev.batch_size, np.random.default_rng(seed), 'cpu')
            net.eval()
            with torch.no_grad():
                lv = net(torch.from_numpy(data.x_val)).numpy()
                lt = net(torch.from_numpy(data.x_train[:1024])).numpy()
            out['val_logits'].append(lv); out['train_logits'].append(lt)
            out['soft_json'].append(row['inherited_soft_val']); out['params'].append(row['params'])
            out['sa'].append([r['val'] for r in row['runs']])
        np.savez_compressed(f'/work/main/scratch/score/{sup}.{name}.npz', val_logits=np.array(out['val_logits']),
                            train_logits=np.array(out['train_logits']), soft_json=np.array(out['soft_json']),
                            sa=np.array(out['sa']), params=np.array(out['params']), y_val=data.y_val, y_train=data.y_train[:1024])
        # sanity: soft accuracy at T=1 equals the recorded one
        lv = np.array(out['val_logits']); p = torch.from_numpy(lv).softmax(-1).numpy()
        soft = p[:, np.arange(len(data.y_val)), data.y_val].mean(1)
        print(sup, name, 'max |soft - recorded|', np.abs(soft - np.array(out['soft_json'])).max(), flush=True)
