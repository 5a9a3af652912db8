import runpy, sys
sys.path.insert(0, "scratch/arms2")
import patches
patches.apply(sys.argv[1])
sys.argv = ["benchmarks/supernet_ranking.py"] + sys.argv[2:]
runpy.run_path("benchmarks/supernet_ranking.py", run_name="__main__")
