"""2-D toy data: the lecture cases defeat a line and not a hidden layer; grids, features, limits, divergence."""

import math

import pytest
import torch

from engine.errors import UserInputError
from engine.training import toy2d


def _trained(name: str, *, hidden=(8, 8), steps: int = 300, seed: int = 0):
    x, y = toy2d.make(name, n_points=400, noise=0.1, seed=seed)
    model = toy2d.build_model(toy2d.ToyNet(hidden=hidden, activation="tanh"), seed=seed)
    result = toy2d.train_steps(model, torch.optim.Adam(model.parameters(), lr=0.03), x, y, steps=steps)
    return x, y, model, result


def test_registry_lists_lecture_cases_first():
    names = toy2d.toy_names()
    assert names[:3] == ["quadrants", "ring", "modes"]
    assert [toy2d.toy_info(n).lecture_case for n in names] == [True] * 3 + [False] * 4
    assert set(names[3:]) == {"moons", "circles", "xor", "spiral"}


@pytest.mark.parametrize("name", toy2d.toy_names())
def test_make_shapes_and_determinism(name):
    x, y = toy2d.make(name, n_points=300, noise=0.3, seed=5)
    assert x.shape == (300, 2) and x.dtype == torch.float32
    assert y.shape == (300,) and y.dtype == torch.int64 and set(y.tolist()) == {0, 1}
    x2, y2 = toy2d.make(name, n_points=300, noise=0.3, seed=5)
    torch.testing.assert_close(x, x2)
    assert torch.equal(y, y2)
    x3, _ = toy2d.make(name, n_points=300, noise=0.3, seed=6)
    assert not torch.equal(x, x3)


def test_make_does_not_touch_global_rng():
    state = torch.get_rng_state()
    toy2d.make("spiral", n_points=100, noise=0.2, seed=1)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("name", ["quadrants", "ring", "modes"])
def test_lecture_cases_need_a_hidden_layer(name):
    x, y, model, result = _trained(name)
    assert toy2d.linear_accuracy(x, y) < 0.75
    assert not result.diverged and result.losses[-1] < result.losses[0]
    assert toy2d.evaluate(model, x, y).accuracy > 0.95


def test_linear_accuracy_high_on_separable_blobs():
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200,), generator=gen)
    x = torch.randn(200, 2, generator=gen) * 0.3 + torch.stack([4.0 * y - 2, torch.zeros(200)], 1)
    assert toy2d.linear_accuracy(x, y) == 1.0


def test_decision_grid_matches_model_predictions():
    _, _, model, _ = _trained("moons", steps=50)
    bounds = (-2.0, 1.5, -1.0, 2.0)
    grid = toy2d.decision_grid(model, bounds, 7)
    assert grid.values.shape == (2, 7, 7)
    i, j = 2, 5  # row i is y = ys[i], column j is x = xs[j]
    assert grid.xs[j] == pytest.approx(-2.0 + j * 3.5 / 6) and grid.ys[i] == pytest.approx(-1.0 + i * 3.0 / 6)
    with torch.no_grad():
        expected = torch.softmax(model(torch.tensor([[grid.xs[j], grid.ys[i]]])), 1)[0]
    torch.testing.assert_close(torch.from_numpy(grid.values[:, i, j]), expected, rtol=1e-5, atol=1e-6)
    assert grid.values.sum(0) == pytest.approx(1.0, abs=1e-5)


def test_unit_grids_are_first_layer_activations():
    model = toy2d.build_model(toy2d.ToyNet(hidden=(3, 4), activation="relu", features=("xy",)), seed=0)
    grid = toy2d.unit_grids(model, (-1.0, 1.0, -1.0, 1.0), 5)
    assert grid.values.shape == (3, 5, 5)
    point = torch.tensor([[grid.xs[1], grid.ys[3]]])
    linear = model[1]
    expected = torch.relu(linear(torch.tensor([[point[0, 0], point[0, 1], point[0, 0] * point[0, 1]]])))[0]
    torch.testing.assert_close(torch.from_numpy(grid.values[:, 3, 1]), expected.detach())
    assert toy2d.unit_grids(toy2d.build_model(toy2d.ToyNet(hidden=()), seed=0), (-1, 1, -1, 1), 5) is None


def test_feature_map_columns():
    p = torch.tensor([[2.0, 3.0]])
    out = toy2d.feature_map(p, features=["x2", "y2", "xy", "sin_x", "sin_y"])
    torch.testing.assert_close(out, torch.tensor([[2.0, 3.0, 4.0, 9.0, 6.0, math.sin(2.0), math.sin(3.0)]]))
    assert toy2d.feature_map(p) is p


def test_features_let_a_linear_model_separate_the_ring():
    x, y = toy2d.make("ring", n_points=400, noise=0.1, seed=0)
    model = toy2d.build_model(toy2d.ToyNet(hidden=(), features=("x2", "y2")), seed=0)
    toy2d.train_steps(model, torch.optim.Adam(model.parameters(), lr=0.1), x, y, steps=300)
    assert toy2d.evaluate(model, x, y).accuracy > 0.95


def test_split_sizes_and_disjoint():
    x, y = toy2d.make("xor", n_points=100, noise=0.0, seed=0)
    s = toy2d.split(x, y, test_share=0.3, seed=0)
    assert len(s.x_train) == 70 and len(s.x_test) == 30
    rows = {tuple(r) for r in s.x_train.tolist()} | {tuple(r) for r in s.x_test.tolist()}
    assert len(rows) == 100
    assert len(toy2d.split(x, y, test_share=0.0, seed=0).x_test) == 0


def test_model_shapes_and_linear_case():
    model = toy2d.build_model(toy2d.ToyNet(hidden=(), features=("sin_x",)), seed=0)
    assert [type(m) for m in model] == [toy2d.FeatureMap, torch.nn.Linear]
    assert model[1].in_features == 3
    again = toy2d.build_model(toy2d.ToyNet(hidden=(), features=("sin_x",)), seed=0)
    torch.testing.assert_close(model[1].weight, again[1].weight)


@pytest.mark.parametrize("call, fragment", [
    (lambda: toy2d.make("ring", n_points=5000, noise=0.1, seed=0), "at most|20…2000"),
    (lambda: toy2d.make("ring", n_points=100, noise=2.0, seed=0), "noise"),
    (lambda: toy2d.make("nope", n_points=100, noise=0.1, seed=0), "unknown 2-D data set"),
    (lambda: toy2d.build_model(toy2d.ToyNet(hidden=(8,) * 5), seed=0), "hidden layers"),
    (lambda: toy2d.build_model(toy2d.ToyNet(hidden=(17,)), seed=0), "units"),
    (lambda: toy2d.build_model(toy2d.ToyNet(features=("cos",)), seed=0), "unknown input feature"),
    (lambda: toy2d.split(torch.zeros(4, 2), torch.zeros(4), test_share=0.95, seed=0), "test share"),
])
def test_bad_input_is_refused(call, fragment):
    with pytest.raises(UserInputError, match=fragment):
        call()


def test_diverging_learning_rate_stops_with_finite_weights():
    x, y = toy2d.make("spiral", n_points=200, noise=0.1, seed=0)
    model = toy2d.build_model(toy2d.ToyNet(hidden=(16, 16), activation="relu"), seed=0)
    result = toy2d.train_steps(model, torch.optim.SGD(model.parameters(), lr=1e6), x, y, steps=50)
    assert result.diverged and len(result.losses) < 50
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert toy2d.evaluate(model, x, y).loss <= toy2d.DIVERGED_LOSS  # the last good weights are back


def test_bounds_cover_every_point_set():
    a, b = torch.tensor([[0.0, 0.0], [1.0, 2.0]]), torch.tensor([[-1.0, 1.0]])
    assert toy2d.bounds_of(a, b, margin=0.5) == pytest.approx((-2.0, 2.0, -1.0, 3.0))


def test_add_points_joins_the_training_split_and_refuses_bad_rows():
    x, y = toy2d.make("moons", n_points=40, noise=0.1, seed=0)
    data = toy2d.split(x, y, test_share=0.25, seed=0)
    grown = toy2d.add_points(data, [(0.5, -0.5, 1), (4.0, 4.0, 0)])
    assert len(grown.x_train) == len(data.x_train) + 2 and torch.equal(grown.x_test, data.x_test)
    torch.testing.assert_close(grown.x_train[-2:], torch.tensor([[0.5, -0.5], [4.0, 4.0]]))
    assert grown.y_train[-2:].tolist() == [1, 0]
    assert toy2d.add_points(data, []) is data
    for bad, rule in [([(math.nan, 0.0, 0)], "numbers in"), ([(9.0, 0.0, 0)], "numbers in"),
                      ([(0.0, 0.0, 2)], "class must be 0 or 1"), ([(0.0, 0.0, 0)] * 201, "at most 200")]:
        with pytest.raises(UserInputError, match=rule):
            toy2d.add_points(data, bad)
