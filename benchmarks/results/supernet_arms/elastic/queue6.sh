while pgrep -f "queue5.sh" > /dev/null; do sleep 5; done
cd /work/main; export PATH=$PWD/.venv/bin:$PATH
S=(--set data.out_dir=scratch/a2/data)
python benchmarks/supernet_ranking.py --repeats 2 --subnet-seed 23 "${S[@]}" --set supernet.out_dir=scratch/a2/prog4 --json scratch/arms2/prog4.f23.json > scratch/arms2/prog4.f23.log 2>&1
for n in base base_s1 base_s2 prog4_s1 prog4_s2; do
  python benchmarks/supernet_ranking.py --repeats 2 --subnet-seed 23 "${S[@]}" --set supernet.out_dir=scratch/a2/$n --reference scratch/arms2/prog4.f23.json --json scratch/arms2/$n.f23.json > scratch/arms2/$n.f23.log 2>&1
done
