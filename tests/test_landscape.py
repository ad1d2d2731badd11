"""engine.training.landscape: filter normalization, interpolation, PCA planes and grid evaluation."""

import numpy as np
import pytest
import torch

from engine import models
from engine.device import generator
from engine.errors import UserInputError
from engine.training import landscape, losses
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer

LOSS = losses.build("cross_entropy")


def tiny_resnet(seed=0):
    return models.build("resnet_small", in_channels=1, num_classes=10, image_size=8, seed=seed, width=4)


def batch(n=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def eval_loss(model, x, y):
    with models.evaluating(model), torch.no_grad():
        logits = model(x)
    return float(LOSS(logits, y)), float((logits.argmax(1) == y).float().mean())


def test_filter_normalized_direction_has_the_filter_norms_of_the_weights():
    model = tiny_resnet()
    d = landscape.filter_normalized_direction(model, generator=generator(3))
    parts = d.split([p.numel() for p in model.parameters()])
    checked = 0
    for (name, p), part in zip(model.named_parameters(), parts):
        part = part.reshape(p.shape)
        if p.dim() <= 1:  # biases and BatchNorm scales: zero, Li et al.'s 'biasbn'
            assert not part.any(), name
            continue
        for w_filter, d_filter in zip(p.detach(), part):
            torch.testing.assert_close(d_filter.norm(), w_filter.norm(), rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked > 50


def test_landscape_at_origin_equals_the_models_loss_and_leaves_the_model_alone():
    model = tiny_resnet().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = batch()
    plane = landscape.random_plane(model, seed=1)
    grid = landscape.evaluate(model, plane, x, y, LOSS, xs=np.array([-0.5, 0.0, 0.5]), ys=np.array([-0.5, 0.0, 0.5]),
                              chunk=16)
    loss, acc = eval_loss(model, x, y)
    assert grid.loss[1, 1] == pytest.approx(loss, rel=1e-5)
    assert grid.acc[1, 1] == pytest.approx(acc)
    assert grid.complete and grid.loss[0, 0] != pytest.approx(loss)
    assert model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_chunked_channels_last_evaluation_matches_the_naive_loop():
    model = models.build("tinyvgg", in_channels=3, num_classes=4, image_size=8, seed=0, width=4)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(50, 3, 8, 8, generator=gen), torch.randint(0, 4, (50,), generator=gen)
    plane = landscape.random_plane(model, seed=0)
    axis = landscape.axis(1.0, 3)
    fast = landscape.evaluate(model, plane, x, y, LOSS, xs=axis, ys=axis, chunk=16)
    slow = landscape.naive_evaluate(model, plane, x, y, LOSS, xs=axis, ys=axis)
    np.testing.assert_allclose(fast.loss, slow, rtol=1e-4)


def test_interpolation_endpoints_are_the_two_models_with_their_batchnorm_statistics():
    start, end = tiny_resnet(seed=0), tiny_resnet(seed=1)
    with torch.no_grad():  # give the end model BatchNorm statistics of its own
        end.train()(torch.rand(64, 1, 8, 8) * 3)
    x, y = batch()
    line = landscape.interpolation_line(start, start.state_dict(), end.state_dict())
    values = landscape.evaluate(start, line, x, y, LOSS, xs=np.array([0.0, 0.5, 1.0]))
    assert values.loss[0] == pytest.approx(eval_loss(start, x, y)[0], rel=1e-5)
    assert values.loss[2] == pytest.approx(eval_loss(end, x, y)[0], rel=1e-5)


def test_pca_plane_reproduces_a_trajectory_that_lies_in_a_plane():
    model = tiny_resnet()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    u = {k: torch.randn(v.shape, generator=gen) for k, v in base.items() if v.is_floating_point()}
    w = {k: torch.randn(v.shape, generator=gen) for k, v in base.items() if v.is_floating_point()}
    coords = [(0.0, 0.0), (1.0, 0.3), (1.5, 1.0), (1.2, 2.0), (2.0, 2.5)]
    path = [{k: v + a * u[k] + b * w[k] if k in u else v for k, v in base.items()} for a, b in coords]
    plane, (projected,) = landscape.pca_plane(model, [path])
    assert sum(plane.explained) == pytest.approx(1.0, abs=1e-6)
    basis = torch.stack(plane.directions, 1).double()
    for state, (a, b) in zip(path, projected):
        rebuilt = plane.origin.double() + basis @ torch.tensor([a, b], dtype=torch.float64)
        torch.testing.assert_close(rebuilt, landscape.flatten_state(model, state).double(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(projected[-1], [0.0, 0.0], atol=1e-5)  # centred on the final weights


def test_pca_plane_of_real_training_snapshots(digits):
    config = TrainConfig(data="digits", model="mlp", optimizer="sgd", lr=0.1, epochs=4, batch_size=128,
                         snapshots=True)
    trainer = Trainer(config, digits)
    run = trainer.fit()
    snapshots = run.history.snapshots
    assert len(snapshots) == 5  # the initialization and one per epoch
    plane, (projected,) = landscape.pca_plane(run.model, [snapshots])
    assert projected.shape == (5, 2)
    np.testing.assert_allclose(projected[-1], [0.0, 0.0], atol=1e-5)
    assert plane.explained[0] > 0.5  # SGD paths are nearly one-dimensional (Li et al. §7)
    x, y = digits.val.x[:64], digits.val.y[:64]
    grid = landscape.evaluate(run.model, plane, x, y, LOSS, xs=np.array([0.0]), ys=np.array([0.0]))
    assert grid.loss[0, 0] == pytest.approx(eval_loss(run.model, x, y)[0], rel=1e-5)


def test_refined_grid_reuses_coarse_points_and_cancel_leaves_nan():
    model = tiny_resnet()
    x, y = batch(16)
    plane = landscape.random_plane(model, seed=0)
    coarse_axis = landscape.axis(1.0, landscape.coarse_resolution(5))
    coarse = landscape.evaluate(model, plane, x, y, LOSS, xs=coarse_axis, ys=coarse_axis)
    fine_axis = landscape.axis(1.0, 5)
    np.testing.assert_allclose(fine_axis[::2], coarse_axis)
    calls = []
    stop_after = lambda: len(calls) > 100  # noqa: E731
    fine = landscape.evaluate(model, plane, x, y, LOSS, xs=fine_axis, ys=fine_axis, previous=coarse,
                              progress=lambda f, m: calls.append(f), should_stop=stop_after)
    np.testing.assert_array_equal(fine.loss[::2, ::2], coarse.loss)
    stopped = landscape.evaluate(model, plane, x, y, LOSS, xs=fine_axis, ys=fine_axis, should_stop=lambda: True)
    assert np.isnan(stopped.loss).all() and not stopped.complete


@pytest.mark.parametrize("call, words", [
    (lambda m, p: landscape.axis(1.0, 42), "between 2 and 41"),
    (lambda m, p: landscape.axis(0.0, 5), "span"),
    (lambda m, p: landscape.random_plane(m, dims=3), "1 or 2 directions"),
    (lambda m, p: landscape.pca_plane(m, [[m.state_dict()] * 2]), "at least 3"),
    (lambda m, p: landscape.evaluate(m, p, *batch(4), LOSS, xs=np.zeros(3)), "needs xs and ys"),
])
def test_bad_input_names_the_rule(call, words):
    model = tiny_resnet()
    with pytest.raises(UserInputError, match=words):
        call(model, landscape.random_plane(model))


def _path(model, steps=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    return [{k: v + 0.1 * t * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
             for k, v in base.items()} for t in range(steps)]


def test_plane_view_random_is_the_random_plane_on_a_square_grid():
    model = tiny_resnet()
    view = landscape.plane_view(model, kind="random", span=0.5, resolution=5, seed=3)
    np.testing.assert_allclose(view.xs, [-0.5, -0.25, 0.0, 0.25, 0.5])
    np.testing.assert_array_equal(view.xs, view.ys)
    expected = landscape.random_plane(model, seed=3)
    for got, want in zip(view.plane.directions, expected.directions):
        torch.testing.assert_close(got, want)
    assert view.paths == {}
    with pytest.raises(UserInputError, match="plane kind"):
        landscape.plane_view(model, kind="hessian")


def test_plane_view_pca_holds_the_training_path():
    model = tiny_resnet()
    path = _path(model)
    view = landscape.plane_view(model, kind="pca", snapshots=path, resolution=7)
    plane, (coords,) = landscape.pca_plane(model, [path])
    np.testing.assert_allclose(view.paths["training path"], coords)
    assert view.xs.min() < coords[:, 0].min() and view.xs.max() > coords[:, 0].max()
    assert view.ys.min() < coords[:, 1].min() and view.ys.max() > coords[:, 1].max()
    assert view.plane.explained == pytest.approx(plane.explained)


def test_paths_view_puts_every_trajectory_on_one_plane_through_the_start():
    model = tiny_resnet()
    paths = {"a": _path(model, seed=0), "b": _path(model, seed=1)}
    view = landscape.paths_view(model, paths, resolution=5)
    assert list(view.paths) == ["a", "b"] and len(view.xs) == len(view.ys) == 5
    np.testing.assert_allclose(view.paths["a"][0], [0.0, 0.0], atol=1e-5)  # centred on the shared start


def test_line_view_interpolates_from_the_first_snapshot_or_falls_back_to_a_random_direction():
    model = tiny_resnet()
    path = _path(model, steps=3)
    line = landscape.line_view(model, path, points=9)
    assert line.from_init and line.xs[0] == -0.5 and line.xs[-1] == 1.5 and len(line.xs) == 9
    torch.testing.assert_close(line.plane.origin, landscape.flatten_state(model, path[0]))
    fallback = landscape.line_view(model, [], span=2.0, points=5, seed=1)
    assert not fallback.from_init and fallback.plane.dims == 1
    np.testing.assert_allclose(fallback.xs, [-2.0, -1.0, 0.0, 1.0, 2.0])
