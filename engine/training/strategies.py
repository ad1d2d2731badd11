"""The strategy table of transfer learning: similar or different data × little or a lot of it → what to do.

Each cell is a recipe that can run: a linear probe on the source's top layer or on its earlier
layers (chosen on validation), or fine-tuning the top block or every block after training the
new head alone; the pixel baseline runs beside it.

References:
    CS231n notes, "Transfer Learning", https://cs231n.github.io/transfer-learning/ (the four cases).
    Yosinski et al. 2014, "How transferable are features in deep neural networks?", arXiv 1411.1792
        (lower layers are general, top layers specific to the source's task).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from engine.data.sets import Dataset
from engine.job_messages import Progress
from engine.jobs import unless_stopped
from engine.registry import Registry
from engine.training.probe import best, feature_probes, pixel_probe
from engine.training.sources import ALL, Source, fit_to_source, shots_for, subset
from engine.training.transfer import (FineTune, Note, TransferReport, fine_tuner, test_accuracy,
                                      train_events)


@dataclass(frozen=True)
class Strategy:
    name: str
    similar: bool  # target data like the source's
    much: bool  # a lot of target data
    title: str
    advice: str
    why: str


STRATEGIES: Registry[Strategy] = Registry("transfer strategy")
for _strategy in (
    Strategy("similar_little", True, False, "Similar data, little of it", "Linear probe on the top layer",
             "The top layer's features already fit the task; with few images, training more would overfit."),
    Strategy("similar_much", True, True, "Similar data, a lot of it", "Fine-tune a few layers",
             "Enough data to adjust the top blocks without overfitting; the lower layers are fine as they are."),
    Strategy("different_little", False, False, "Different data, little of it", "Linear probe on earlier layers",
             "Top layers are specific to the source's classes; earlier ones hold generic edges and textures."),
    Strategy("different_much", False, True, "Different data, a lot of it", "Fine-tune many layers",
             "Enough data to re-shape most of the network; the source's weights are a good starting point."),
):
    STRATEGIES.add(_strategy.name, _strategy)


def strategy_names() -> list[str]:
    return STRATEGIES.names()


def strategy_info(name: str) -> Strategy:
    return STRATEGIES.get(name)


def strategy_for(*, similar: bool, much: bool) -> Strategy:
    return next(s for _, s in STRATEGIES.items() if s.similar == similar and s.much == much)


def run_strategy(should_stop: Callable[[], bool] | None = None, *, strategy: str, source: Source, target: Dataset,
                 per_class: int = ALL, epochs: int = 5, seed: int = 0) -> Iterator[Progress | Note | TransferReport]:
    """Run the recipe of `strategy` against the pixel baseline; the report names what was done."""
    entry = strategy_info(strategy)
    should_stop = should_stop or (lambda: False)
    started = time.perf_counter()
    (k,), notes = shots_for(target, [per_class])
    fitted, conversions = fit_to_source(target, source)
    for note in notes + conversions:
        yield Note(note)
    raw, fit = subset(target, k, seed), subset(fitted, k, seed)
    pixels = unless_stopped(should_stop, pixel_probe, raw, seed=seed)  # scikit-learn: no should_stop of its own
    if pixels is None:
        return
    accuracies = {"pixels_linear": pixels.test_acc}
    names = [layer.name for layer in source.layers]
    if not entry.much:
        layers = names[-1:] if entry.similar else names[:max(1, len(names) // 2)]
        results = unless_stopped(should_stop, feature_probes, source, fit, layers=layers, seed=seed)
        if results is None:
            return
        chosen = best(results)
        accuracies["features_linear"] = chosen.test_acc
        yield TransferReport("all" if k == ALL else k, chosen.feature.label, accuracies,
                             time.perf_counter() - started, notes + conversions, results,
                             recipe=f"a linear probe on {chosen.feature.label}, the best on validation of "
                                    f"{', '.join(layers)}")
        return
    unfreeze = 1 if entry.similar else len(source.blocks)
    spec = FineTune(head_epochs=epochs, epochs=epochs, unfreeze=unfreeze, seed=seed)
    trainer = fine_tuner(source, fit, spec)
    yield from train_events(trainer, should_stop, f"fine-tuning the top {unfreeze} block{'s' * (unfreeze > 1)}", (0.0, 1.0))
    if should_stop():
        return
    accuracies["fine_tuned"] = test_accuracy(trainer)
    yield TransferReport("all" if k == ALL else k, "", accuracies, time.perf_counter() - started,
                         notes + conversions, recipe=f"the new head alone for {epochs} epochs, then the top "
                                                  f"{unfreeze} of {len(source.blocks)} blocks at lr × {spec.base_lr_factor:g} for {epochs}")
