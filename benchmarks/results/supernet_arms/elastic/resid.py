import json, numpy as np, re
from scipy.stats import kendalltau
rows=[]
for f in ['rec_r2','heldout7_r2']:
  d=json.load(open('benchmarks/results/supernet_arms/width/'+f+'.json'))
  for s in d['subnets']:
    st=[x.strip() for x in s['architecture'].split('|')]
    feat={}
    for i,stg in enumerate(st):
      c,blocks=stg.split(':'); c=int(c[1:]); bl=blocks.split('-')
      feat[f'w{i}']=c/[16,24,32][i]; feat[f'd{i}']=len(bl)
      feat[f'k{i}']=np.mean([int(re.match(r'k(\d)e(\d)',b).group(1)) for b in bl])
      feat[f'e{i}']=np.mean([int(re.match(r'k(\d)e(\d)',b).group(2)) for b in bl])
    rows.append((s['inherited_soft_val'], s['standalone_val'], np.log(s['params']), feat, f))
X=np.array([[r[0]] for r in rows]); y=np.array([r[1] for r in rows])
names=list(rows[0][3].keys())
F=np.array([[r[3][n] for n in names] for r in rows])
A=np.c_[np.ones(len(y)),X]
coef,*_=np.linalg.lstsq(A,y,rcond=None); res=y-A@coef
print('resid sd',res.std())
for j,n in enumerate(names):
  c=np.corrcoef(F[:,j],res)[0,1]; print(n,'%.2f'%c)
# tau of soft vs params on each set
for f in ['rec_r2','heldout7_r2']:
  idx=[i for i,r in enumerate(rows) if r[4]==f]
  print(f, kendalltau([rows[i][0] for i in idx],[rows[i][1] for i in idx])[0])
