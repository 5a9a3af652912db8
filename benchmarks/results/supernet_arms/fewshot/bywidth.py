# Recorded copy: ran from the development checkout. Kendall tau within each last-stage width (the
# default supernet, seed 0): does the supernet rank subnets that share the last stage's width?
import json
from scipy.stats import kendalltau as kt
for f in ['scratch/arms2/base.rec.json', 'scratch/arms2/base.ho.json', 'scratch/arms2/base.f23.json']:
    sub = json.load(open(f))['subnets']
    for w in ['c16', 'c24', 'c32']:
        s = [x for x in sub if x['architecture'].split('|')[2].strip().startswith(w + ':')]
        if len(s) < 4:
            print(f, w, len(s))
            continue
        inh = [x['inherited_soft_val'] for x in s]
        m = [x['standalone_val'] for x in s]
        r0 = [x['runs'][0]['val'] for x in s]
        r1 = [x['runs'][1]['val'] for x in s]
        p = [x['params'] for x in s]
        print(f.split('/')[-1], w, len(s), 'soft vs s0 %.3f s1 %.3f mean %.3f | params vs mean %.3f | seeds %.3f'
              % (kt(inh, r0)[0], kt(inh, r1)[0], kt(inh, m)[0], kt(p, m)[0], kt(r0, r1)[0]))
