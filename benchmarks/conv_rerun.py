"""Server time of reruns after moving one control: 256×256 photo, 8 output channels, torch on 2 threads.
Measures the script run itself (wall and CPU of the script thread), not AppTest's polling."""
import os, statistics, sys, time
os.environ["VISIONEXPLORER_THREADS"] = "2"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import torch; torch.set_num_threads(2)
from streamlit.runtime.scriptrunner import script_runner
from tests.apptest_helpers import run_page
wall, cpu = [], []
orig = script_runner.ScriptRunner._run_script
def timed(self, *a, **k):
    w, c = time.perf_counter(), time.thread_time()
    try: return orig(self, *a, **k)
    finally: wall.append(time.perf_counter() - w); cpu.append(time.thread_time() - c)
at = run_page("app_pages/convolution/conv_playground.py", query_params={"photo": "astronaut", "px": "256", "oc": "8", "w": "random"})
assert at.metric[0].value == "8×256×256"
script_runner.ScriptRunner._run_script = timed
for key, values in [("conv.k", [5, 3] * 5), ("conv.stride", [2, 1] * 5), ("conv.dil", [2, 1] * 5)]:
    wall.clear(); cpu.clear()
    for v in values:
        at.number_input(key=key).set_value(v); at.run(); assert not at.exception
    print(f"{key}: wall median {statistics.median(wall)*1e3:.0f} ms (min {min(wall)*1e3:.0f}), "
          f"script-thread CPU median {statistics.median(cpu)*1e3:.0f} ms")
print("load average", os.getloadavg())
