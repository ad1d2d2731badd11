"""Jobs on Ray against local worker processes: Ray's start, and a default Train Lab training's overhead.

Starts the runner on a local Ray as the app does with VISIONEXPLORER_RAY_ADDRESS=local (a Ray with
all the machine's cores) and times that, then the warm-up of its workers (torch imported in each). Then
the default Train Lab training (TrainConfig(): Tiny VGG on digits, 20 epochs) runs as one job,
alternately on the local process runner and on the Ray runner (both warm, one slot busy, 1 torch
thread each), `--repeats` times. Overhead = seconds from submit to the job's end, minus the
training's own seconds (its History.total_seconds). Both runs must give the same losses.

    python benchmarks/ray_jobs.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import interleaved, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    setup()
    from engine import data
    from engine.jobs import JobRunner
    from engine.training.interleaved import train_interleaved
    from engine.training.trainer import TrainConfig

    start = time.perf_counter()
    runners = {"ray": JobRunner(workers="ray", ray_address="local", threads=1)}
    print(f"Ray runner on a local Ray ({runners['ray'].where()}): started in {time.perf_counter() - start:.1f} s")
    runners["local"] = JobRunner(slots=1, workers="process", threads=1)
    for name, runner in runners.items():
        start = time.perf_counter()
        runner.warm_up()
        print(f"{name} warm-up ({runner.slots} worker{'s' if runner.slots > 1 else ''}): "
              f"{time.perf_counter() - start:.1f} s")

    runs = [("run", TrainConfig(), data.load("digits", seed=0))]
    trained, losses = {"ray": [], "local": []}, {}

    def job(name: str):
        def timed() -> float:
            start = time.perf_counter()
            handle = runners[name].submit(train_interleaved, session=name, runs=runs)
            assert handle.wait(600) and handle.state == "done", handle.error_trace
            wall = time.perf_counter() - start
            run = [run for _, _, run in handle.drain() if run is not None][-1]
            trained[name].append(run.history.total_seconds)
            losses[name] = run.history.train_loss
            return wall - run.history.total_seconds
        return timed

    pairs = interleaved(job("local"), job("ray"), args.repeats)
    assert losses["ray"] == losses["local"], "a seed must give the same losses on Ray as locally"
    for name, overheads in (("local", pairs.a), ("ray", pairs.b)):
        print(f"{name}: training {statistics.median(trained[name]):.2f} s, overhead (submit to end, minus "
              f"training) median {statistics.median(overheads):.2f} s ({' '.join(f'{o:.2f}' for o in overheads)})")
    print(f"other processes' CPU share per pair: {' '.join(f'{o:.0%}' for o in pairs.others)}")


if __name__ == "__main__":
    main()
