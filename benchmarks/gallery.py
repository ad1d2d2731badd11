"""Architecture gallery: every listed network built and summarized cold, and the page's reruns once cached.

    python benchmarks/gallery.py [--cold 3] [--reruns 10]

Cold: a fresh Python process imports engine.models.gallery and describes every network on the meta
device (build, one forward pass under FlopCounterMode and the receptive-field tracer); prints the import,
the describing and the process's whole time, the median of `--cold` processes. Target ≤ 10 s.
Cached: the page in AppTest, each view opened once (which fills the caches), then `--reruns` reruns
of each; prints the script run's own wall time (not AppTest's polling), median and fastest.
Target ≤ 300 ms. Both report the share of the CPUs other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _timing import ROOT, Contention, setup

THREADS = setup()

COLD = """
import json, time
start = time.perf_counter()
from engine.models import gallery
imported = time.perf_counter()
gallery.describe_all()
done = time.perf_counter()
print(json.dumps({"import": imported - start, "describe": done - imported, "networks": len(gallery.names())}))
"""
VIEWS = {"one network (DenseNet-121, 366 layers)": {"view": "network", "net": "densenet121"},
         "all networks & ILSVRC": {"view": "compare"}, "building blocks": {"view": "blocks"},
         "two 3×3 vs one 5×5": {"view": "stacks", "c": "256"}}


def cold(repeats: int) -> None:
    runs = []
    with Contention() as busy:
        for _ in range(repeats):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", COLD], cwd=ROOT, capture_output=True, text=True, check=True)
            runs.append({**json.loads(out.stdout.strip().splitlines()[-1]), "process": time.perf_counter() - started})
    median = {key: statistics.median(run[key] for run in runs) for key in ("import", "describe", "process")}
    each = " ".join(f"{run['process']:.2f}" for run in runs)
    print(f"cold, {runs[0]['networks']} networks, median of {repeats} fresh processes: import {median['import']:.2f} s, "
          f"describe all {median['describe']:.2f} s, whole process {median['process']:.2f} s (target ≤ 10 s); "
          f"processes: {each} s")
    print(f"  {busy.describe()}")


def cached(reruns: int) -> None:
    from streamlit.runtime.scriptrunner import script_runner

    from tests.apptest_helpers import assert_no_exception, run_page

    wall: list[float] = []
    original = script_runner.ScriptRunner._run_script

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            wall.append(time.perf_counter() - started)

    script_runner.ScriptRunner._run_script = timed
    for name, query in VIEWS.items():
        at = run_page("app_pages/architectures/gallery.py", query_params=query, timeout=300)
        wall.clear()
        with Contention() as busy:
            for _ in range(reruns):
                at.run(timeout=300)
                assert_no_exception(at, name)
        print(f"cached rerun, {name}: median {statistics.median(wall) * 1e3:.0f} ms, fastest {min(wall) * 1e3:.0f} ms "
              f"over {len(wall)} reruns (target ≤ 300 ms); {busy.describe()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=3, help="fresh processes")
    parser.add_argument("--reruns", type=int, default=10, help="cached reruns per view")
    args = parser.parse_args()
    print(f"{THREADS} torch threads; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cold(args.cold)
    cached(args.reruns)


if __name__ == "__main__":
    main()
