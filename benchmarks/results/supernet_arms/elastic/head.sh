cd /work/main; export PATH=$PWD/.venv/bin:$PATH
# Recorded copy: ran from scratch/arms2/ of the development checkout (scratch/arms2/site/sitecustomize.py applied the patch in the stand-alone worker processes too).
export ARM_PATCH=head128 PYTHONPATH=/work/main/scratch/arms2/site:/work/main
S=(data.out_dir=scratch/a2/data supernet.out_dir=scratch/a2/head128)
python scratch/arms2/pre.py head128 "${S[@]}" > scratch/arms2/head128.pretrain.log 2>&1 || exit 1
python scratch/arms2/rank.py head128 --repeats 2 --subnet-seed 23 --set ${S[0]} --set ${S[1]} --json scratch/arms2/head128.f23.json > scratch/arms2/head128.f23.log 2>&1
