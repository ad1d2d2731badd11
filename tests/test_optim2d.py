"""engine.training.surfaces: surfaces, and torch.optim paths checked against the lectures' update rules by hand."""

import math

import numpy as np
import pytest
import torch

from engine.training import surfaces as optim2d
from engine.errors import UserInputError

STEPS = 5


def rosenbrock_grad(x: float, y: float) -> np.ndarray:
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def hand_path(rule: str, start, lr: float, steps: int = STEPS, mu: float = 0.9) -> np.ndarray:
    """The update rules as written on the slides (PyTorch's conventions for ε and α)."""
    theta = np.array(start, dtype=float)
    v = np.zeros(2)
    s = np.zeros(2)
    m = np.zeros(2)
    path = [theta.copy()]
    for t in range(1, steps + 1):
        g = rosenbrock_grad(*theta)
        if rule == "sgd":
            theta = theta - lr * g
        elif rule == "momentum":
            v = mu * v + g
            theta = theta - lr * v
        elif rule == "adagrad":
            s = s + g * g
            theta = theta - lr * g / (np.sqrt(s) + 1e-10)
        elif rule == "rmsprop":
            s = 0.99 * s + 0.01 * g * g
            theta = theta - lr * g / (np.sqrt(s) + 1e-8)
        elif rule == "adam":
            m = 0.9 * m + 0.1 * g
            s = 0.999 * s + 0.001 * g * g
            m_hat, s_hat = m / (1 - 0.9 ** t), s / (1 - 0.999 ** t)
            theta = theta - lr * m_hat / (np.sqrt(s_hat) + 1e-8)
        path.append(theta.copy())
    return np.stack(path)


@pytest.mark.parametrize("rule, lr", [("sgd", 1e-3), ("momentum", 1e-3), ("adagrad", 0.05),
                                      ("rmsprop", 0.01), ("adam", 0.05)])
def test_trajectory_matches_hand_written_update_rule(rule, lr):
    path = optim2d.trajectory("rosenbrock", rule, lr=lr, steps=STEPS, start=(-1.5, 2.5))
    np.testing.assert_allclose(path.positions, hand_path(rule, (-1.5, 2.5), lr), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(path.step_sizes, np.linalg.norm(np.diff(path.positions, axis=0), axis=1))
    x, y = path.positions[-1]
    assert path.losses[-1] == pytest.approx((1 - x) ** 2 + 100 * (y - x * x) ** 2)


@pytest.mark.parametrize("name", optim2d.names())
def test_listed_minima_are_stationary_and_lowest(name):
    surface = optim2d.info(name)
    values = optim2d.grid(name, resolution=81).z
    for mx, my in surface.minima:
        point = torch.tensor([mx, my], dtype=torch.float64, requires_grad=True)
        f = optim2d.evaluate(name, point[0], point[1])
        (grad,) = torch.autograd.grad(f, point)
        assert float(grad.abs().max()) < 1e-4, (name, (mx, my), grad)
        assert float(f.detach()) <= values.min() + 1e-6


def test_quadratic_condition_number_sets_the_stable_learning_rate():
    # Gradient descent on ½(x² + κy²) is stable iff η < 2/κ (the y-coordinate is multiplied by 1 − ηκ).
    kappa = 50.0
    stable = optim2d.trajectory("quadratic", "sgd", lr=1.9 / kappa, steps=400, condition=kappa)
    unstable = optim2d.trajectory("quadratic", "sgd", lr=2.1 / kappa, steps=400, condition=kappa)
    assert not stable.diverged and stable.losses[-1] < 1e-3
    assert unstable.diverged and "diverged at step" in unstable.message


def test_divergence_stops_at_last_finite_point():
    path = optim2d.trajectory("rosenbrock", "sgd", lr=0.1, steps=200)
    assert path.diverged and 1 <= len(path.positions) < 201
    assert np.isfinite(path.positions).all() and np.isfinite(path.losses).all()
    assert len(path.step_sizes) == len(path.positions) - 1


@pytest.mark.parametrize("name, optimizer", [("quadratic", "momentum"), ("himmelblau", "adam"), ("saddle", "sgd")])
def test_suggested_learning_rate_reaches_a_minimum(name, optimizer):
    path = optim2d.trajectory(name, optimizer, lr=optim2d.suggested_lr(name, optimizer), steps=400)
    _, distance = optim2d.nearest_minimum(name, tuple(path.positions[-1]))
    assert not path.diverged and distance < 0.05


def test_grid_is_vectorized_and_rows_are_y():
    g = optim2d.grid("beale", resolution=11)
    assert g.z.shape == (11, 11)
    i, j = 3, 7
    expected = optim2d.evaluate("beale", torch.tensor(g.xs[j]), torch.tensor(g.ys[i]))
    assert g.z[i, j] == pytest.approx(float(expected))


@pytest.mark.parametrize("call, words", [
    (lambda: optim2d.trajectory("nope", "sgd", lr=0.1), "unknown surface 'nope'; choose one of: quadratic"),
    (lambda: optim2d.trajectory("beale", "sgd", lr=-1.0), "learning rate"),
    (lambda: optim2d.trajectory("beale", "sgd", lr=0.1, steps=0), "steps must be"),
    (lambda: optim2d.grid("beale", resolution=1000), "resolution"),
    (lambda: optim2d.grid("quadratic", condition=0.5), "condition number"),
])
def test_bad_input_names_the_rule(call, words):
    with pytest.raises(UserInputError, match=words):
        call()


def test_saddle_escape_needs_a_push():
    # Started exactly on the ridge y = 0, the gradient never gets a y component: stuck on the saddle.
    path = optim2d.trajectory("saddle", "sgd", lr=0.05, steps=300, start=(-2.0, 0.0))
    assert math.dist(path.positions[-1], (0.0, 0.0)) < 1e-6


# Every setting the Optimizers-on-surfaces page's widgets allow, at their extremes and in between:
# κ 1–1000, steps 10–1000, μ 0–0.99, η 1e-6–100 (a path may diverge, but it must end cleanly).
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.99])
def test_every_widget_setting_gives_a_path_or_explains_why_not(optimizer, momentum):
    for surface in optim2d.names():
        for lr in (1e-6, 0.05, 100.0):
            for condition in (1.0, 1000.0):
                try:
                    path = optim2d.trajectory(surface, optimizer, lr=lr, steps=10, momentum=momentum,
                                              condition=condition)
                except UserInputError as error:  # the only setting torch refuses: Nesterov without momentum
                    assert optimizer == "nesterov" and momentum == 0.0, (surface, lr, condition, error)
                    assert "Nesterov momentum needs a momentum μ > 0" in str(error)
                    continue
                assert optimizer != "nesterov" or momentum > 0
                assert np.isfinite(path.positions).all() and np.isfinite(path.losses).all()
                assert path.diverged or len(path.positions) == 11
    with pytest.raises(UserInputError):
        optim2d.trajectory("quadratic", optimizer, lr=0.1, steps=1001, momentum=momentum)
