# Recorded copy: ran from scratch/arms4/ of the development checkout (outputs there, copied here).
"""24 subnets spread by size over the search's evaluated set (the region a search explores)."""
import json
import numpy as np
from nas.runners import read_populations
df = read_populations('scratch/a4/search/populations')
df = df[df.status == 'ok'].drop_duplicates('candidate_id').sort_values('params').reset_index(drop=True)
idx = np.unique(np.round(np.linspace(0, len(df) - 1, 24)).astype(int))
sel = df.iloc[idx]
print(len(df), 'evaluated;', len(sel), 'picked; params', sel.params.min(), '-', sel.params.max())
json.dump([json.loads(g) if isinstance(g, str) else list(map(int, g)) for g in sel.genome], open('scratch/arms4/elite24.json', 'w'))
