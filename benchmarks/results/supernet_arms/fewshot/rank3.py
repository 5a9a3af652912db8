# Recorded copy: ran from scratch/arms3/ of the development checkout (outputs there, copied here).
import runpy, sys, os
sys.path.insert(0, "scratch/arms3")
if os.environ.get("FEWSHOT_DIR"):
    import patches3
    patches3.apply()
sys.argv = ["benchmarks/supernet_ranking.py"] + sys.argv[1:]
runpy.run_path("benchmarks/supernet_ranking.py", run_name="__main__")
