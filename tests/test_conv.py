"""engine.layers.conv and engine.layers.kernels against what PyTorch computes and refuses."""

from __future__ import annotations

import contextlib
import io
import random
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.layers import conv, coverage, kernels
from engine.layers import receptive_field as rf
from engine.layers.conv import ConvConfig, PoolConfig
from engine.layers.receptive_field import RFLayer
from engine.errors import UserInputError
from engine.models.export import conv_source

pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
              pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")]


def _torch_conv_shape(cfg: ConvConfig, h: int, w: int) -> tuple[int, int] | Exception:
    """What PyTorch does with `cfg` on an H×W input: the output shape, or the exception it raised."""
    try:
        module = conv.conv_module(cfg)
        with torch.no_grad():
            return tuple(module(torch.rand(1, cfg.in_channels, h, w)).shape[-2:])
    except Exception as error:  # PyTorch raises ValueError, RuntimeError or TypeError
        return error


def _torch_pool_shape(cfg: PoolConfig, h: int, w: int) -> tuple[int, int] | Exception:
    try:
        with torch.no_grad():
            return tuple(conv.pool_module(cfg)(torch.rand(1, 2, h, w)).shape[-2:])
    except Exception as error:
        return error


def _random_conv(rng: random.Random, *, valid_only: bool) -> tuple[ConvConfig, int, int]:
    transposed = rng.random() < 0.3
    lo = 1 if valid_only else 0
    groups = rng.choice([1, 1, 2, 3])
    in_ch = groups * rng.randint(1, 2) if valid_only else rng.randint(1, 4)
    out_ch = groups * rng.randint(1, 2) if valid_only else rng.randint(1, 4)
    stride = rng.randint(lo, 3)
    padding = rng.choice([0, 1, 2, 3, 4, "same", "valid"] if not transposed else [0, 1, 2, 3])
    if valid_only and padding == "same":
        stride = 1
    cfg = ConvConfig(in_ch, out_ch, rng.randint(lo, 7), stride, padding, rng.randint(lo, 3), groups,
                     rng.random() < 0.5, "zeros" if transposed and valid_only else rng.choice(conv.PADDING_MODES),
                     transposed, rng.randint(0, 2) if transposed else 0)
    return cfg, rng.randint(1, 12), rng.randint(1, 12)


# ---- output sizes ----------------------------------------------------------------------------------------

def test_output_size_equals_pytorch_shapes_over_random_valid_configs():
    rng = random.Random(0)
    compared = {"conv": 0, "transposed": 0, "max": 0, "avg": 0}
    while min(compared.values()) < 300:
        cfg, h, w = _random_conv(rng, valid_only=True)
        try:
            expected = conv.output_hw(cfg, h, w)
            conv.check_conv(cfg, h, w)
        except UserInputError:
            continue
        assert _torch_conv_shape(cfg, h, w) == expected, (cfg, h, w)
        compared["transposed" if cfg.transposed else "conv"] += 1
        kind = rng.choice(conv.POOL_KINDS)
        k = rng.randint(1, 6)
        pool = PoolConfig(kind, k, rng.choice([None, 1, 2, 3]), rng.randint(0, k // 2),
                          rng.randint(1, 3) if kind == "max" else 1, rng.random() < 0.5)
        try:
            expected = conv.output_hw(pool, h, w)
        except UserInputError:
            continue
        assert _torch_pool_shape(pool, h, w) == expected, (pool, h, w)
        compared[kind] += 1
    assert sum(compared.values()) >= 1000


@pytest.mark.parametrize("n,k,s,p,expected", [(7, 3, 1, 0, 5), (7, 3, 2, 0, 3), (7, 3, 1, 1, 7), (32, 5, 1, 2, 32),
                                              (7, 3, 3, 0, 2), (227, 11, 4, 0, 55), (224, 7, 2, 3, 112)])
def test_output_size_lecture_examples(n, k, s, p, expected):
    assert conv.output_size(n, k, s, p) == expected


def test_same_padding_keeps_the_size_and_puts_the_extra_pixel_after():
    assert conv.padding_amounts(4, "same") == (1, 2)
    assert conv.padding_amounts(3, "same", dilation=3) == (3, 3)
    assert conv.output_size(10, 4, padding="same") == 10
    assert conv.output_size(10, 4, padding="valid") == 7


# ---- every rule agrees with PyTorch ----------------------------------------------------------------------

def _agree_with_torch(cases, check, torch_shape) -> None:
    """`check` refuses exactly the (config, h, w) that PyTorch refuses, and else gives its shape."""
    outcomes = {"accepted": 0, "refused": 0}
    for cfg, h, w in cases:
        result = torch_shape(cfg, h, w)
        try:
            engine = check(cfg, h, w)
        except UserInputError as error:
            assert isinstance(result, Exception), f"engine refused {cfg} on {h}×{w} ({error}); PyTorch gave {result}"
            outcomes["refused"] += 1
            continue
        assert not isinstance(result, Exception), f"engine accepted {cfg} on {h}×{w}; PyTorch: {result}"
        assert engine == result
        outcomes["accepted"] += 1
    assert min(outcomes.values()) > 200, outcomes


def test_check_conv_refuses_exactly_what_pytorch_refuses():
    rng = random.Random(1)
    _agree_with_torch((_random_conv(rng, valid_only=False) for _ in range(2500)), conv.check_conv,
                      _torch_conv_shape)


def test_check_pool_refuses_exactly_what_pytorch_refuses():
    rng = random.Random(2)

    def case():
        kind = rng.choice(conv.POOL_KINDS)
        cfg = PoolConfig(kind, rng.randint(1, 6), rng.choice([None, 1, 2, 3]), rng.randint(0, 4),
                         rng.randint(1, 3) if kind == "max" else 1, rng.random() < 0.5)
        return cfg, rng.randint(1, 9), rng.randint(1, 9)

    _agree_with_torch((case() for _ in range(1500)), conv.check_pool, _torch_pool_shape)


CONV_RULES = [  # (config, input size, words the message must contain, what PyTorch says)
    (ConvConfig(1, 1, 5), 3, "larger than the padded input", "Kernel size can't be greater"),
    (ConvConfig(1, 1, 3, padding=3, padding_mode="reflect"), 3, "reflect padding (3)", "Padding size should be less"),
    (ConvConfig(1, 1, 9, padding="same", padding_mode="reflect"), 4, "reflect padding (4)", "Padding size should be less"),
    (ConvConfig(1, 1, 3, padding=4, padding_mode="circular"), 3, "circular padding (4)", "wrapping around more than once"),
    (ConvConfig(3, 2, 3, groups=2), 5, "groups must divide in_channels", "in_channels must be divisible by groups"),
    (ConvConfig(2, 3, 3, groups=2), 5, "groups must divide out_channels", "out_channels must be divisible by groups"),
    (ConvConfig(1, 1, 3, stride=2, padding="same"), 5, "padding='same' needs stride 1", "not supported for strided"),
    (ConvConfig(1, 1, 3, stride=2, transposed=True, output_padding=2), 5, "output_padding (2) must be smaller",
     "output padding must be smaller than either stride or dilation"),
    (ConvConfig(1, 1, 3, padding=3, transposed=True), 3, "must be ≥ 1", "Output size is too small"),
    (ConvConfig(1, 1, 3, padding_mode="reflect", transposed=True), 5, "only pads with zeros",
     'Only "zeros" padding mode is supported'),
    (ConvConfig(1, 1, 3, stride=0), 5, "stride must be a positive whole number", "non-positive stride"),
    (ConvConfig(1, 1, 3, padding=-1), 5, "padding must be a ≥ 0 whole number", "negative padding"),
    (ConvConfig(1, 1, 3, dilation=0), 5, "dilation must be a positive", "dilation should be greater than zero"),
]


@pytest.mark.parametrize("cfg,n,words,torch_words", CONV_RULES)
def test_each_conv_rule_matches_pytorch_error(cfg, n, words, torch_words):
    with pytest.raises(UserInputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        conv.check_conv(cfg, n, n)
    with pytest.raises((ValueError, RuntimeError)) as raised:
        conv.conv_module(cfg)(torch.rand(1, cfg.in_channels, n, n))
    assert torch_words in str(raised.value)


@pytest.mark.parametrize("cfg,n,words,torch_words", [
    (PoolConfig("max", 3, padding=2), 8, "at most half the kernel size", "pad should be at most half"),
    (PoolConfig("avg", 3, padding=2), 8, "at most half the kernel size", "pad should be at most half"),
    (PoolConfig("max", 3, 1, padding=2, dilation=2), 8, "at most half the kernel size", "half of kernel size"),
    (PoolConfig("max", 5), 3, "larger than the padded input", "Output size is too small"),
    (PoolConfig("avg", 5, 2, ceil_mode=True), 3, "larger than the padded input", "Output size is too small"),
])
def test_each_pool_rule_matches_pytorch_error(cfg, n, words, torch_words):
    with pytest.raises(UserInputError, match=words):
        conv.check_pool(cfg, n, n)
    with pytest.raises(RuntimeError, match=torch_words):
        conv.pool_module(cfg)(torch.rand(1, 1, n, n))


def test_ceil_mode_lets_a_window_hang_over_the_edge_as_pytorch_does():
    assert conv.check_pool(PoolConfig("max", 4, 2, ceil_mode=True), 3, 3) == (1, 1)
    assert conv.check_pool(PoolConfig("max", 2, 2, ceil_mode=True), 5, 5) == (3, 3)
    assert conv.output_size(5, 2, 2) == 2


# ---- windows ---------------------------------------------------------------------------------------------

def _gradient_support(module: nn.Module, x: torch.Tensor, i: int, j: int) -> set[tuple[int, int]]:
    x = x.clone().requires_grad_(True)
    module(x)[0, 0, i, j].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    return set(zip(rows.tolist(), cols.tolist()))


def test_feeding_positions_equal_the_gradient_support():
    rng = random.Random(3)
    checked = 0
    while checked < 150:
        cfg, h, w = _random_conv(rng, valid_only=True)
        cfg = ConvConfig(1, 1, cfg.kernel_size, cfg.stride, cfg.padding, cfg.dilation, 1, False,
                         cfg.padding_mode, cfg.transposed, cfg.output_padding)
        try:
            out_h, out_w = conv.check_conv(cfg, h, w)
        except UserInputError:
            continue
        module = conv.conv_module(cfg)
        with torch.no_grad():
            module.weight.fill_(1.0)  # positive weights: no gradient cancels out
        i, j = rng.randrange(out_h), rng.randrange(out_w)
        assert conv.feeding_positions(cfg, h, w, i, j) == _gradient_support(module, torch.rand(1, 1, h, w), i, j), cfg
        checked += 1
    for _ in range(100):
        k = rng.randint(1, 4)
        pool = PoolConfig("avg", k, rng.randint(1, 3), rng.randint(0, k // 2), ceil_mode=rng.random() < 0.5)
        out_h, out_w = conv.check_pool(pool, 7, 6)
        i, j = rng.randrange(out_h), rng.randrange(out_w)
        expected = _gradient_support(conv.pool_module(pool), torch.rand(1, 1, 7, 6), i, j)
        assert conv.feeding_positions(pool, 7, 6, i, j) == expected, pool


@pytest.mark.parametrize("mode", conv.PADDING_MODES)
def test_window_products_sum_to_the_conv_output_everywhere(mode):
    gen = torch.Generator().manual_seed(4)
    image = torch.randint(0, 10, (1, 7, 6), generator=gen).float()
    for k, s, p, d in [(3, 1, 1, 1), (3, 2, 2, 1), (2, 1, "same", 2), (3, 3, 0, 1), (3, 1, "same", 2)]:
        cfg = ConvConfig(1, 1, k, s, p, d, bias=False, padding_mode=mode)
        kernel = torch.randint(-2, 3, (k, k), generator=gen).float()
        out = conv.run_conv(cfg, image, conv.make_weight(cfg, kernel=kernel))[0]
        padded = conv.pad_image(image, cfg)[0]
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                products, total = conv.window_products(padded, kernel, cfg, i, j)
                assert products.shape == (k, k)
                assert total == pytest.approx(out[i, j].item(), abs=1e-4), (cfg, i, j)


def test_padding_modes_copy_what_f_pad_copies():
    row = torch.arange(5.0)[None, None, None]  # (1, 1, 1, 5)
    for mode in ("reflect", "replicate", "circular"):
        padded = F.pad(row, (3, 3, 0, 0), mode=mode)[0, 0, 0]
        mapped = [conv.source_index(p, 5, mode) for p in range(-3, 8)]
        assert padded.tolist() == [float(m) for m in mapped], mode
    assert conv.source_index(-1, 5, "zeros") is None


def test_coverage_shows_the_rows_floor_division_never_visits():
    assert coverage.coverage(7, 3, 3).tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert coverage.coverage(7, 3, 2).tolist() == [1, 1, 2, 1, 2, 1, 1]
    assert coverage.coverage(5, 3, 1, 1).sum() == 5 * 3


# ---- receptive fields ------------------------------------------------------------------------------------

def _random_stack(rng: random.Random) -> list[RFLayer]:
    layers = []
    for _ in range(rng.randint(1, 5)):
        if rng.random() < 0.35:
            k = rng.randint(2, 3)
            layers.append(RFLayer("pool", k, rng.randint(1, 2), rng.randint(0, k // 2)))
        else:
            layers.append(RFLayer("conv", rng.choice([1, 3, 5]), rng.randint(1, 2), rng.randint(0, 2), rng.randint(1, 2)))
    return layers


def test_receptive_field_equals_the_gradient_measurement_on_random_stacks():
    rng = random.Random(5)
    measured = 0
    for _ in range(40):
        layers, n = _random_stack(rng), 48
        try:
            rows = rf.receptive_field(layers, n)
        except UserInputError:  # the stack shrinks the image to nothing
            continue
        net = nn.Sequential(*[rf.layer_module(layer) for layer in layers])
        for module in net:
            if isinstance(module, nn.Conv2d):
                nn.init.ones_(module.weight), nn.init.zeros_(module.bias)
        inside = [u for u in range(rows[-1].out_size) if rows[-1].span(u)[0] >= 0 and rows[-1].span(u)[1] < n]
        assert tuple(net(torch.zeros(1, 1, n, n)).shape[-2:]) == (rows[-1].out_size,) * 2
        for u in inside[:: max(1, len(inside) // 3)]:
            support = _gradient_support(net, torch.rand(1, 1, n, n), u, u)
            lows, highs = min(r for r, _ in support), max(r for r, _ in support)
            assert (lows, highs) == rows[-1].span(u), (layers, u)
            assert highs - lows + 1 == rows[-1].size
            measured += 1
    assert measured >= 40


def test_receptive_field_textbook_values():
    three_3x3 = [RFLayer("conv", 3, 1, 1)] * 3
    assert rf.receptive_field(three_3x3)[-1].size == 7  # three 3×3 convs see as far as one 7×7
    dilated = [RFLayer("conv", 3, 1, 0, 1), RFLayer("conv", 3, 1, 0, 2), RFLayer("conv", 3, 1, 0, 4)]
    assert [r.size for r in rf.receptive_field(dilated)] == [1, 3, 7, 15]  # exponential growth
    rows = rf.receptive_field([RFLayer("conv", 3, 1, 1), RFLayer("pool", 2, 2)], 32)
    assert (rows[-1].jump, rows[-1].start, rows[-1].out_size) == (2, -1, 16)


def test_receptive_field_explains_bad_layers():
    with pytest.raises(UserInputError, match="layer 2"):
        rf.receptive_field([RFLayer("conv", 3), RFLayer("pool", 3, 1, 2)])
    with pytest.raises(UserInputError, match="layer 2:.*larger than the padded input"):
        rf.receptive_field([RFLayer("conv", 3), RFLayer("conv", 9)], 8)


# ---- weights, costs, code, kernels, quiz -----------------------------------------------------------------

def test_preset_weights_average_over_input_channels():
    image = torch.rand(3, 6, 6)
    cfg = ConvConfig(3, 2, 3, padding=1, bias=False)
    out = conv.run_conv(cfg, image, conv.make_weight(cfg, kernel=kernels.kernel("identity", 3)))
    torch.testing.assert_close(out, image.mean(0).expand(2, 6, 6))


def test_random_weights_follow_the_seed_and_pytorch_default_bounds():
    cfg = ConvConfig(4, 8, 3)
    a, b = conv.make_weight(cfg, seed=1), conv.make_weight(cfg, seed=1)
    torch.testing.assert_close(a, b)
    assert a.abs().max() <= 1 / (4 * 9) ** 0.5 and not torch.equal(a, conv.make_weight(cfg, seed=2))


@pytest.mark.parametrize("cfg", [ConvConfig(3, 8, 3, padding=1), ConvConfig(4, 6, 5, 2, groups=2, bias=False),
                                 ConvConfig(6, 6, 3, groups=6), ConvConfig(4, 2, 3, 2, 1, transposed=True),
                                 ConvConfig(3, 5, 1)])
def test_conv_cost_counts_the_real_module(cfg):
    cost = conv.conv_cost(cfg, 10, 9)
    module = conv.conv_module(cfg)
    assert cost.params == sum(p.numel() for p in module.parameters())
    out = module(torch.rand(1, cfg.in_channels, 10, 9))
    assert (cost.out_h, cost.out_w) == tuple(out.shape[-2:])
    per_tap = 10 * 9 if cfg.transposed else out[0, 0].numel()  # a transposed conv multiplies each input pixel
    assert cost.macs == per_tap * module.weight.numel()


@pytest.mark.parametrize("cfg", [ConvConfig(3, 8, 3, 2, 1), ConvConfig(4, 4, 5, padding="same", padding_mode="reflect",
                                                                       groups=2, bias=False),
                                 ConvConfig(2, 3, 3, 2, 1, transposed=True, output_padding=1),
                                 PoolConfig("max", 3, 2, 1, ceil_mode=True), PoolConfig("avg", 2)])
def test_conv_source_rebuilds_the_layer(cfg):
    line = conv_source(cfg)
    rebuilt = eval(line, {"nn": nn})
    made = conv.conv_module(cfg) if isinstance(cfg, ConvConfig) else conv.pool_module(cfg)
    assert repr(rebuilt) == repr(made)
    snippet = conv_source(cfg, input_shape=(cfg.in_channels if isinstance(cfg, ConvConfig) else 2, 11, 12))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(snippet, {})
    assert printed.getvalue().strip() in snippet  # the comment states the shape PyTorch prints


def test_kernels_are_what_their_names_say():
    edge = torch.zeros(1, 1, 5, 5)
    edge[..., 3:] = 1.0  # dark left, bright right
    sobel_x = F.conv2d(edge, kernels.kernel("sobel_x")[None, None])
    assert sobel_x.min() >= 0 and sobel_x.max() > 0
    assert F.conv2d(edge, kernels.kernel("sobel_y")[None, None]).abs().max() == 0
    for name in ("box_blur", "gaussian_blur", "identity", "sharpen"):
        assert kernels.kernel(name, 5).sum().item() == pytest.approx(1.0)
    assert kernels.kernel("laplacian", 5).sum() == 0 and kernels.kernel("laplacian", 5)[2, 2] == -4
    with pytest.raises(UserInputError, match="≥ 3"):
        kernels.kernel("sobel_x", 2)
    with pytest.raises(UserInputError, match="unknown kernel"):
        kernels.kernel("blur", 3)


def test_random_questions_have_pytorch_answers_and_some_do_not_divide():
    exact = []
    for seed in range(60):
        q = rf.random_question(seed)
        shape = F.conv2d(torch.zeros(1, 1, q.n, q.n), torch.zeros(1, 1, q.kernel, q.kernel),
                         stride=q.stride, padding=q.padding).shape
        assert shape[-1] == q.answer
        exact.append(q.exact)
    assert 0 < sum(exact) < len(exact)
    assert rf.random_question(7) == rf.random_question(7)


@pytest.mark.parametrize("n, k, s, p, d", [(85, 3, 2, 2, 2), (7, 3, 3, 0, 1), (10, 2, 3, 0, 1), (12, 3, 2, 1, 3),
                                           (9, 3, 1, 1, 1), (20, 3, 4, 1, 2)])
def test_unread_rows_are_the_rows_pytorch_never_differentiates(n, k, s, p, d):
    """An independent measurement: the rows whose input gradient is zero for a conv of ones."""
    layer = torch.nn.Conv2d(1, 1, (k, 1), stride=(s, 1), padding=(p, 0), dilation=(d, 1), bias=False)
    torch.nn.init.ones_(layer.weight)
    x = torch.rand(1, 1, n, 1, requires_grad=True)
    layer(x).sum().backward()
    zero = [i for i in range(n) if x.grad[0, 0, i, 0] == 0]
    assert coverage.unread_rows(n, k, s, p, d).rows == zero


def test_unread_rows_are_explained_by_the_rule_that_leaves_them():
    # Issue 17: S = 2, D = 2, P = 2 on 85 rows leaves every odd row, not "the last rows".
    text = coverage.explain_unread(85, 3, 2, 2, 2)
    assert coverage.unread_rows(85, 3, 2, 2, 2).between[:3] == [1, 3, 5]
    assert "share the factor 2" in text and "rounds the output size down" not in text
    assert "rounds the output size down" in coverage.explain_unread(7, 3, 3) and "between" not in coverage.explain_unread(7, 3, 3)
    assert "larger than the window's span" in coverage.explain_unread(10, 2, 3)
    assert coverage.explain_unread(9, 3, 1, 1) == "" and not coverage.unread_rows(9, 3, 1, 1)
