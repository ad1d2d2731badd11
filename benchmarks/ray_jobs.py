"""Jobs on Ray against local worker processes: Ray's start, and a default Train Lab training's overhead.

Starts the runner on a local Ray as the app does with VISIONEXPLORER_RAY_ADDRESS=local (a Ray with
all the machine's cores) and times that, then the warm-up of its workers (torch imported in each). Then
the default Train Lab training (TrainConfig(): Tiny VGG on digits, 20 epochs) runs as one job,
alternately on the local process runner and on the Ray runner (both warm, one slot busy, 1 torch
thread each), `--repeats` times: seconds from submit to the job's end, the training's own seconds
(History.total_seconds, which includes handing each event over), and Ray − local per pair. Both
runs must give the same losses.
Last, a job of EMPTY_EVENTS empty events on each: what one event costs to stream back.

    python benchmarks/ray_jobs.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import interleaved, setup

EMPTY_EVENTS = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    setup()
    import ray_jobs  # count_events by this module's name, not __main__'s: the workers import it
    from engine import data
    from engine.jobs import JobRunner
    from engine.training.config import TrainConfig
    from engine.training.interleaved import train_interleaved

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
    trained, losses, events = {"ray": [], "local": []}, {}, {}

    def job(name: str):
        def timed() -> float:
            start = time.perf_counter()
            handle = runners[name].submit(train_interleaved, session=name, runs=runs)
            assert handle.wait(600) and handle.state == "done", handle.error_trace
            wall = time.perf_counter() - start
            drained = handle.drain()
            run = [run for _, _, run in drained if run is not None][-1]
            trained[name].append(run.history.total_seconds)
            losses[name], events[name] = run.history.train_loss, len(drained)
            return wall
        return timed

    pairs = interleaved(job("local"), job("ray"), args.repeats)
    assert losses["ray"] == losses["local"], "a seed must give the same losses on Ray as locally"
    print(f"default Train Lab training as one job ({events['ray']} events), {args.repeats} pairs:")
    for name, walls in (("local", pairs.a), ("ray", pairs.b)):
        print(f"  {name}: submit to end {statistics.median(walls):.2f} s ({' '.join(f'{w:.2f}' for w in walls)}), "
              f"of which training (History.total_seconds) {statistics.median(trained[name]):.2f} s")
    extra = [ray_s - local_s for local_s, ray_s in zip(pairs.a, pairs.b)]
    print(f"  Ray − local per pair: median {statistics.median(extra):+.2f} s "
          f"({' '.join(f'{e:+.2f}' for e in extra)})")
    print(f"  other processes' CPU share per pair: {' '.join(f'{o:.0%}' for o in pairs.others)}")

    def empty_events(name: str) -> float:
        start = time.perf_counter()
        handle = runners[name].submit(ray_jobs.count_events, session=name, n=EMPTY_EVENTS)
        assert handle.wait(600) and len(handle.drain()) == EMPTY_EVENTS
        return time.perf_counter() - start

    pairs = interleaved(lambda: empty_events("local"), lambda: empty_events("ray"), args.repeats)
    print(f"{EMPTY_EVENTS} empty events as one job: local {statistics.median(pairs.a) * 1e3 / EMPTY_EVENTS:.2f} ms, "
          f"Ray {statistics.median(pairs.b) * 1e3 / EMPTY_EVENTS:.2f} ms per event (medians)")


def count_events(should_stop, *, n: int):
    yield from range(n)

if __name__ == "__main__":
    main()
