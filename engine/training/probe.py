"""Linear probes: a trained network's features, a linear classifier on top, and 2-D pictures of the feature space.

A probe reads one layer of a source (engine.training.sources), pools its maps to a small grid or
keeps them whole, and fits a standardized linear classifier (scikit-learn) on the target's
training images; the same classifier on raw pixels is the baseline. Global average pooling keeps
one number per channel and throws away where things are: for a small CNN with 16 channels a
2×2 or 4×4 grid, or the flattened map, keeps the layout. The layer and pooling are chosen on the
validation split; features are computed in batches and cached per source, layer and data.

References:
    Alain & Bengio 2016, "Understanding intermediate layers using linear classifier probes", arXiv 1610.01644.
    Razavian et al. 2014, "CNN Features off-the-shelf", arXiv 1403.6382 (a linear SVM on pooled features).
    van der Maaten & Hinton 2008, "Visualizing Data using t-SNE", JMLR 9.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits
from torch import Tensor

from engine import models
from engine.device import configure_threads, generator
from engine.errors import UserInputError
from engine.registry import Registry
from engine.data.sets import Dataset
from engine.training.sources import HEAD_INPUT, Source, fit_to_source, shots_for, subset

Progress = Callable[[float, str], None]
PIXELS = "pixels"  # the baseline's "layer": the target's own pixels, flattened
CHUNK = 256  # images per forward pass
MAX_FEATURES = 16384  # numbers per image a probe reads: wider maps are offered pooled only
CACHE_BYTES = 512 * 1024**2  # features kept per process, oldest dropped first
MAX_EMBED_POINTS = 2000  # t-SNE cannot be cancelled midway, so it sees at most this many points
PCA_BEFORE_TSNE = 50  # dimensions t-SNE starts from (its authors' advice)


@dataclass(frozen=True)
class Pooling:
    name: str
    title: str
    grid: int  # side of the average-pooled grid; 0 = the whole map, flattened


POOLINGS: Registry[Pooling] = Registry("feature pooling")
for _pooling in (Pooling("avg1", "global average (1×1)", 1), Pooling("avg2", "average to 2×2", 2),
                 Pooling("avg4", "average to 4×4", 4), Pooling("flat", "whole map, flattened", 0)):
    POOLINGS.add(_pooling.name, _pooling)


@dataclass(frozen=True)
class Classifier:
    name: str
    title: str
    build: Callable[[float, int], object]  # (C, seed) -> a scikit-learn estimator


def _logistic(c: float, seed: int):
    return LogisticRegression(C=c, max_iter=2000, random_state=seed)


def _svm(c: float, seed: int):
    return LinearSVC(C=c, max_iter=5000, random_state=seed)


CLASSIFIERS: Registry[Classifier] = Registry("linear classifier")
CLASSIFIERS.add("logistic", Classifier("logistic", "logistic regression (softmax)", _logistic))
CLASSIFIERS.add("svm", Classifier("svm", "linear SVM (hinge loss)", _svm))


def pooling_names() -> list[str]:
    return POOLINGS.names()


def pooling_info(name: str) -> Pooling:
    return POOLINGS.get(name)


def classifier_names() -> list[str]:
    return CLASSIFIERS.names()


# ---------------------------------------------------------------------------- features
@dataclass(frozen=True)
class Feature:
    """One way to read a source: a layer and how its maps are pooled."""

    layer: str  # a source layer's name, or PIXELS
    pooling: str  # a POOLINGS name ("flat" for vectors)
    width: int  # numbers per image

    @property
    def label(self) -> str:
        if self.layer == HEAD_INPUT:
            return "classifier input"
        return self.layer if self.layer == PIXELS else f"{self.layer} / {self.pooling}"


def feature_options(source: Source) -> list[Feature]:
    """Every (layer, pooling) the source offers: grids smaller than the map, the whole map within MAX_FEATURES."""
    options = []
    for layer in source.layers:
        if not layer.spatial:
            options.append(Feature(layer.name, "flat", layer.shape[0]))
            continue
        c, h, w = layer.shape
        for pooling in POOLINGS.items():
            grid = pooling[1].grid
            width = c * h * w if grid == 0 else c * grid * grid
            if (grid == 0 or grid < min(h, w)) and width <= MAX_FEATURES:
                options.append(Feature(layer.name, pooling[0], width))
    return options


def _pool(maps: Tensor, pooling: str) -> Tensor:
    grid = pooling_info(pooling).grid
    if maps.dim() == 2:
        return maps
    pooled = maps if grid == 0 else F.adaptive_avg_pool2d(maps, grid)  # (B, C, h, w) -> (B, C, g, g)
    return pooled.flatten(1)  # -> (B, C·g·g)


class _Enough(Exception):
    """Raised by the last hook needed: the rest of the forward pass is not computed."""


def _data_key(x: Tensor) -> str:
    return hashlib.sha1(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


_CACHE: OrderedDict[tuple[str, str, str, str], Tensor] = OrderedDict()


def _remember(key: tuple[str, str, str, str], value: Tensor) -> None:
    _CACHE[key] = value
    while sum(v.numel() * v.element_size() for v in _CACHE.values()) > CACHE_BYTES and len(_CACHE) > 1:
        _CACHE.popitem(last=False)


def _forward(source: Source, x: Tensor, layers: list[str]) -> dict[str, Tensor]:
    """The named layers' outputs for images `x` (maps as (B, C, h, w), vectors as (B, D)), in one pass."""
    out: dict[str, Tensor] = {}
    modules = dict(source.model.named_modules())
    wanted = set(layers)

    def keep(name: str, value: Tensor) -> None:
        if value.dim() == 3 and source.reshape is not None:
            value = source.reshape(value)  # (B, 1 + N, D) -> (B, D, h, w)
        out[name] = value
        if wanted <= set(out):
            raise _Enough

    handles = [modules[source.head].register_forward_pre_hook(lambda m, i: keep(HEAD_INPUT, i[0]))
               if name == HEAD_INPUT else
               modules[name].register_forward_hook(lambda m, i, o, name=name: keep(name, o)) for name in wanted]
    try:
        with models.evaluating(source.model), torch.no_grad():
            source.model(x)
    except _Enough:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return out


def features(source: Source, x: Tensor, wanted: list[Feature], *,
             progress: Progress | None = None) -> dict[Feature, Tensor]:
    """Features (N, width) of images `x` (fitted to the source) for each of `wanted`, cached; batched
    forward passes, reported as `progress(fraction, message)` (a job's callback raises there on Cancel)."""
    configure_threads()
    data = _data_key(x)
    keys = {f: (source.key, data, f.layer, f.pooling) for f in wanted}
    missing = [f for f in wanted if keys[f] not in _CACHE]
    if missing:
        layers = list(dict.fromkeys(f.layer for f in missing))
        parts: dict[Feature, list[Tensor]] = {f: [] for f in missing}
        for start in range(0, len(x), CHUNK):
            if progress is not None:
                progress(start / len(x), f"Features of {source.title}: image {start:,} of {len(x):,}")
            maps = _forward(source, x[start:start + CHUNK], layers)
            for f in missing:
                parts[f].append(_pool(maps[f.layer], f.pooling))
        for f in missing:
            _remember(keys[f], torch.cat(parts[f]))
    result = {}
    for f in wanted:
        _CACHE.move_to_end(keys[f])
        result[f] = _CACHE[keys[f]]
    return result


def pixel_feature(x: Tensor) -> tuple[Feature, Tensor]:
    """The baseline: every pixel value, (N, C·H·W)."""
    flat = x.flatten(1)  # (N, C, H, W) -> (N, C·H·W)
    return Feature(PIXELS, "flat", flat.shape[1]), flat


# ---------------------------------------------------------------------------- the probe
def fit_probe(x: Tensor, y: Tensor, *, classifier: str = "logistic", c: float = 1.0, seed: int = 0) -> Pipeline:
    """Standardize, then a linear classifier: scikit-learn's Pipeline, so the scaling is learned on train only."""
    entry = CLASSIFIERS.get(classifier)
    if not (c > 0 and np.isfinite(c)):
        raise UserInputError(f"the regularization strength C must be a positive number; got {c}")
    if len(torch.unique(y)) < 2:
        raise UserInputError("a linear probe needs training images of at least 2 classes")
    pipe = Pipeline([("scale", StandardScaler()), ("classify", entry.build(c, seed))])
    with threadpool_limits(configure_threads()), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few-shot fit separates the data before it converges
        pipe.fit(x.numpy(), y.numpy())
    return pipe


def score(pipe: Pipeline, x: Tensor, y: Tensor) -> float:
    with threadpool_limits(configure_threads()):
        return float(pipe.score(x.numpy(), y.numpy()))


@dataclass(frozen=True)
class ProbeResult:
    feature: Feature
    val_acc: float
    test_acc: float
    seconds: float  # fitting and scoring, features not counted


def probe(feature: Feature, train: Tensor, val: Tensor, test: Tensor, labels: tuple[Tensor, Tensor, Tensor], *,
          classifier: str = "logistic", c: float = 1.0, seed: int = 0) -> ProbeResult:
    """Fit on the training features; accuracy on validation (to choose) and test (to report)."""
    start = time.perf_counter()
    pipe = fit_probe(train, labels[0], classifier=classifier, c=c, seed=seed)
    val_acc, test_acc = score(pipe, val, labels[1]), score(pipe, test, labels[2])
    return ProbeResult(feature, val_acc, test_acc, time.perf_counter() - start)


def best(results: list[ProbeResult]) -> ProbeResult:
    """The source feature best on validation (ties: the narrower), never the pixel baseline."""
    candidates = [r for r in results if r.feature.layer != PIXELS]
    if not candidates:
        raise UserInputError("no feature layer was probed")
    return max(candidates, key=lambda r: (r.val_acc, -r.feature.width))


def pixel_probe(raw: Dataset, *, classifier: str = "logistic", c: float = 1.0, seed: int = 0) -> ProbeResult:
    """The baseline: a linear classifier on the target's own pixels."""
    flat = [pixel_feature(s.x)[1] for s in (raw.train, raw.val, raw.test)]
    feature = pixel_feature(raw.train.x[:1])[0]
    return probe(feature, *flat, (raw.train.y, raw.val.y, raw.test.y), classifier=classifier, c=c, seed=seed)


def feature_probes(source: Source, fitted: Dataset, *, layers: Sequence[str] | None = None,
                   classifier: str = "logistic", c: float = 1.0, seed: int = 0,
                   progress: Progress | None = None) -> list[ProbeResult]:
    """A linear probe on every (layer, pooling) the source offers (or those of `layers`)."""
    options = [f for f in feature_options(source) if layers is None or f.layer in layers]
    splits = (fitted.train, fitted.val, fitted.test)
    feats = [features(source, s.x, options, progress=progress) for s in splits]
    labels = tuple(s.y for s in splits)
    return [probe(f, feats[0][f], feats[1][f], feats[2][f], labels, classifier=classifier, c=c, seed=seed)
            for f in options]


# ---------------------------------------------------------------------------- pictures of the feature space
@dataclass(frozen=True)
class Embedding:
    points: np.ndarray  # (n, 2)
    labels: np.ndarray  # (n,) class indices
    method: str
    explained: float | None  # PCA: share of the variance the two axes keep


EMBEDDINGS = ("pca", "tsne")


def embed(x: Tensor, y: Tensor, *, method: str = "pca", seed: int = 0,
          max_points: int = MAX_EMBED_POINTS) -> Embedding:
    """2-D positions of (at most `max_points`, a random subset) standardized features: PCA, or t-SNE after PCA to 50."""
    if method not in EMBEDDINGS:
        raise UserInputError(f"embedding must be one of {', '.join(EMBEDDINGS)}; got {method!r}")
    if len(x) < 3:
        raise UserInputError(f"a 2-D picture needs at least 3 images; got {len(x)}")
    if len(x) > max_points:
        index = torch.randperm(len(x), generator=generator(seed))[:max_points]
        x, y = x[index], y[index]
    data = StandardScaler().fit_transform(x.numpy().astype(np.float64))
    with threadpool_limits(configure_threads()):
        if method == "pca":
            pca = PCA(n_components=2, random_state=seed).fit(data)
            return Embedding(pca.transform(data), y.numpy(), method, float(pca.explained_variance_ratio_.sum()))
        reduced = PCA(n_components=min(PCA_BEFORE_TSNE, *data.shape), random_state=seed).fit_transform(data)
        tsne = TSNE(n_components=2, perplexity=min(30.0, (len(data) - 1) / 3), init="pca", random_state=seed)
        return Embedding(tsne.fit_transform(reduced), y.numpy(), method, None)


@dataclass(frozen=True)
class ProbeTable:
    """Pixels vs every feature the source offers, on one training-set size of one target."""

    pixels: ProbeResult
    features: list[ProbeResult]
    chosen: ProbeResult  # best on validation
    per_class: int  # ALL = every training image
    images: int  # training images in all
    notes: list[str]


def probe_table(*, source: Source, target: Dataset, per_class: int = 10, classifier: str = "logistic",
                c: float = 1.0, seed: int = 0, progress: Progress | None = None) -> ProbeTable:
    """The linear probe on pixels and on every (layer, pooling) of the source; `per_class` images of each class."""
    (k,), notes = shots_for(target, [per_class])
    fitted, conversions = fit_to_source(target, source)
    raw, fit = subset(target, k, seed), subset(fitted, k, seed)
    pixels = pixel_probe(raw, classifier=classifier, c=c, seed=seed)
    results = feature_probes(source, fit, classifier=classifier, c=c, seed=seed, progress=progress)
    return ProbeTable(pixels, results, best(results), k, len(raw.train), notes + conversions)


@dataclass(frozen=True)
class FeatureSpace:
    """2-D pictures of the same images as pixels and as one feature of the source."""

    pixels: Embedding
    features: Embedding
    feature: Feature
    class_names: list[str]


def feature_space(*, source: Source, target: Dataset, layer: str, pooling: str, method: str = "pca",
                  seed: int = 0, progress: Progress | None = None) -> FeatureSpace:
    """Embeddings of the target's training images (at most MAX_EMBED_POINTS): pixels vs `layer` / `pooling`."""
    fitted, _ = fit_to_source(target, source)
    wanted = [f for f in feature_options(source) if f.layer == layer and f.pooling == pooling]
    if not wanted:
        raise UserInputError(f"{source.title} offers no feature {layer} / {pooling}; choose one of: "
                             + ", ".join(f.label for f in feature_options(source)))
    x, y = fitted.train.x, fitted.train.y
    if len(x) > MAX_EMBED_POINTS:  # the same subset for both pictures
        index = torch.randperm(len(x), generator=generator(seed))[:MAX_EMBED_POINTS]
        x, y, raw = x[index], y[index], target.train.x[index]
    else:
        raw = target.train.x
    feats = features(source, x, wanted, progress=progress)[wanted[0]]
    if progress is not None:
        progress(0.5, f"{method.upper()} of pixels and of {wanted[0].label}")
    return FeatureSpace(embed(pixel_feature(raw)[1], y, method=method, seed=seed),
                        embed(feats, y, method=method, seed=seed), wanted[0], list(target.class_names))
