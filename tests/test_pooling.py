"""engine.layers.pooling and the conv window step: what the pooling and convolution pages show, against PyTorch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.errors import UserInputError
from engine.layers import conv, pooling


def _image(channels: int = 2, side: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.rand(channels, side, side, generator=torch.Generator().manual_seed(seed))


def test_winners_are_the_positions_of_each_windows_maximum():
    image = _image()
    config = conv.PoolConfig("max", 3, 2)
    view = pooling.pool_view(config, image, corner=6)
    torch.testing.assert_close(view.output, F.max_pool2d(image[None], 3, 2)[0])
    expected = set()
    for i in range(view.output.shape[1]):
        for j in range(view.output.shape[2]):
            window = image[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
            r, c = divmod(int(window.argmax()), 3)
            if 2 * i + r < 6 and 2 * j + c < 6:
                expected.add((2 * i + r, 2 * j + c))
    assert set(view.winners) == expected and len(view.winners) == len(expected)  # each position once
    np.testing.assert_array_equal(view.input_corner, image[0, :6, :6].numpy())
    np.testing.assert_array_equal(view.output_corner, view.output[0, :6, :6].numpy())


def test_average_pooling_has_no_winners():
    view = pooling.pool_view(conv.PoolConfig("avg", 2), _image(), corner=8)
    torch.testing.assert_close(view.output, F.avg_pool2d(_image()[None], 2)[0])
    assert view.winners == []


def test_mix_channels_is_the_matrix_at_every_pixel():
    image = _image(3, 5)
    weights = [[0.299, 0.587, 0.114], [1.0, -1.0, 0.0]]
    out = pooling.mix_channels(image, weights)
    torch.testing.assert_close(out, torch.einsum("oc,chw->ohw", torch.tensor(weights), image))
    with pytest.raises(UserInputError, match="at least one output channel"):
        pooling.mix_channels(image, np.zeros((0, 3)))
    with pytest.raises(UserInputError, match="one weight per input channel"):
        pooling.mix_channels(image, [[1.0, 2.0]])


def test_random_mix_is_pytorchs_default_init_from_the_seed():
    weights = pooling.random_mix(3, 4, seed=5)
    assert weights.shape == (4, 3) and np.abs(weights).max() <= 1 / np.sqrt(3)  # U(±1/√fan_in)
    np.testing.assert_array_equal(weights, pooling.random_mix(3, 4, seed=5))
    assert not np.array_equal(weights, pooling.random_mix(3, 4, seed=6))


@pytest.mark.parametrize("padding, mode, stride, dilation", [(1, "zeros", 1, 1), (2, "reflect", 2, 1),
                                                             (1, "circular", 1, 2), ("same", "replicate", 1, 1)])
def test_window_step_sums_to_what_conv2d_computes(padding, mode, stride, dilation):
    grid = _image(1, 7)
    kernel = torch.arange(9, dtype=torch.float32).reshape(3, 3) / 10
    config = conv.ConvConfig(3, 6, 3, stride, padding, dilation, groups=3, padding_mode=mode)  # channels do not matter
    positions = conv.window_positions(config, grid)
    single = conv.ConvConfig(1, 1, 3, stride, padding, dilation, padding_mode=mode, bias=False)
    reference = conv.run_conv(single, grid, kernel[None, None])[0]
    assert positions == reference.numel()
    for index in (0, positions // 2, positions - 1, positions + 5):  # past the end: the last position
        step = conv.window_step(config, grid, kernel, index=index)
        i, j = divmod(min(index, positions - 1), reference.shape[1])
        assert (step.i, step.j) == (i, j)
        assert step.total == pytest.approx(float(reference[i, j]), abs=1e-5)
        assert step.module_value == pytest.approx(float(reference[i, j]), abs=1e-6)
        torch.testing.assert_close(step.products, step.patch * kernel)
        rows = sorted({r for r, _ in step.cells})
        cols = sorted({c for _, c in step.cells})
        torch.testing.assert_close(step.patch, step.padded[rows][:, cols])


def test_window_positions_refuses_a_kernel_that_does_not_fit_the_grid():
    with pytest.raises(UserInputError, match="larger than the padded input"):
        conv.window_positions(conv.ConvConfig(1, 1, 6, dilation=10), _image(1, 7))
    with pytest.raises(UserInputError, match="reflect padding"):
        conv.window_positions(conv.ConvConfig(1, 1, 3, padding=7, padding_mode="reflect"), _image(1, 7))


def test_padded_corner_shows_the_padding_before_the_corner():
    image = _image(2, 12)
    corner, before = conv.padded_corner(image, conv.ConvConfig(2, 2, 5, padding=2, padding_mode="reflect"), corner=4)
    assert before == 2 and corner.shape == (6, 6)
    np.testing.assert_allclose(corner, F.pad(image[None], (2, 2, 2, 2), mode="reflect")[0, 0, :6, :6].numpy())
    corner, before = conv.padded_corner(image, conv.ConvConfig(2, 2, 3, padding=1, transposed=True), corner=4)
    assert before == 0
    np.testing.assert_array_equal(corner, image[0, :4, :4].numpy())
