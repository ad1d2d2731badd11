"""The architecture gallery against PyTorch: parameter counts of real instances, MACs of FlopCounterMode
and torchvision's metadata, and receptive fields against the input-gradient support of a linear copy."""

import copy
import json
import random

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from engine import models
from engine.__main__ import main
from engine.errors import UserInputError
from engine.layers.network_field import FieldTracer, network_field
from engine.layers.receptive_field import RFLayer, receptive_field
from engine.models import gallery

TORCHVISION = [name for name, _, _ in gallery.TORCHVISION]
OURS = [name for name in gallery.names() if gallery.entry(name).source == "app"]


def _torchvision(name: str, device: str = "meta", **options) -> nn.Module:
    with torch.device(device):
        return torchvision.models.get_model(name, weights=None, **{**gallery.TORCHVISION_OPTIONS.get(name, {}),
                                                                   **options}).eval()


def test_the_gallery_lists_the_torchvision_networks_then_every_cnn_and_vit_of_the_app():
    assert gallery.names()[:len(TORCHVISION)] == TORCHVISION
    assert OURS == [n for n in models.names() if models.info(n).family in ("cnn", "vit")]
    assert {"lenet5", "tinyvgg", "resnet_small", "vit_tiny"} <= set(OURS)


# ---- parameters ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18", "squeezenet1_1", "mobilenet_v3_small", "googlenet"])
def test_params_equal_a_real_cpu_instance(name):
    real = _torchvision(name, "cpu")
    assert gallery.describe(name).params == sum(p.numel() for p in real.parameters())


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_and_macs_match_torchvision_metadata(name):
    summary, spec = gallery.describe(name), gallery.entry(name)
    if name == "inception_v3":  # the metadata counts the auxiliary classifier, used in training only
        full = _torchvision(name, aux_logits=True)
        assert sum(p.numel() for p in full.parameters()) == spec.reference_params
        assert summary.params == spec.reference_params - sum(p.numel() for p in full.AuxLogits.parameters())
    else:
        assert summary.params == spec.reference_params
    assert summary.macs == pytest.approx(spec.reference_macs, rel=0.03)  # _ops counts MACs: not halved
    assert summary.acc1 == spec.weights_meta()["_metrics"]["ImageNet-1K"]["acc@1"]


def test_weights_name_says_which_recipe_the_accuracy_comes_from():
    assert gallery.entry("resnet50").weights_name == "IMAGENET1K_V2"  # newer recipe: 80.9 %, the paper's ≈ 76 %
    assert gallery.entry("resnet18").weights_name == "IMAGENET1K_V1" and gallery.entry("lenet5").weights_name is None


@pytest.mark.parametrize("name", OURS)
def test_app_models_params_equal_a_real_instance_and_rows_add_up(name):
    spec, summary = gallery.entry(name), gallery.describe(name)
    real = spec.factory()  # on the CPU
    assert summary.params == sum(p.numel() for p in real.parameters())
    assert sum(layer.params for layer in summary.layers) == summary.params
    assert sum(layer.macs for layer in summary.layers) == summary.macs
    assert summary.acc1 is None


# ---- MACs ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, size", [("resnet18", 224), ("mobilenet_v3_small", 224), ("vit_tiny", 32)])
def test_macs_agree_with_flop_counter_on_a_real_cpu_forward(name, size):
    real = _torchvision(name, "cpu") if name in TORCHVISION else gallery.entry(name).factory().eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        real(torch.rand(1, 3, size, size))
    assert gallery.describe(name).macs == pytest.approx(counter.get_total_flops() / 2, rel=0.01)  # FLOPs = 2 MACs


@pytest.mark.parametrize("name", ["lenet5", "tinyvgg", "resnet_small"])
def test_conv_nets_macs_and_shapes_equal_the_summary_hooks(name):
    """Convolutions and linear layers only: the app's own summary counts them exactly the same."""
    spec, summary = gallery.entry(name), gallery.describe(name)
    rows = {r.name: r for r in models.summary(spec.factory(), (spec.in_channels, spec.input_size, spec.input_size))}
    assert summary.macs == sum(r.macs for r in rows.values())
    for layer in summary.layers:
        assert layer.output_shape == rows[layer.name].output_shape and layer.macs == rows[layer.name].macs


def test_vit_macs_count_the_attention_products_the_summary_hooks_miss():
    """QKᵀ and A·V: N²·D multiply-accumulates each per block (N tokens, width D)."""
    spec, summary = gallery.entry("vit_tiny"), gallery.describe("vit_tiny")
    options = models.info("vit_tiny").defaults()
    hooks = sum(r.macs for r in models.summary(spec.factory(), (3, spec.input_size, spec.input_size)))
    tokens = (spec.input_size // 4) ** 2 + 1  # 4×4 patches at 32 pixels, plus the class token
    assert summary.macs - hooks == options["depth"] * 2 * tokens**2 * options["width"]


def test_rows_add_up_for_a_transformer_whose_attention_uses_weights_it_never_calls():
    summary = gallery.describe("vit_b_16")  # nn.MultiheadAttention reads out_proj.weight without calling out_proj
    assert sum(layer.params for layer in summary.layers) == summary.params
    assert sum(layer.macs for layer in summary.layers) == summary.macs
    assert summary.receptive_field == 224 and "whole image" in summary.receptive_field_note


# ---- receptive fields ---------------------------------------------------------------------------------------------

LINEAR = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.BatchNorm2d,
          nn.LayerNorm, nn.Dropout)


def _linearised(model: nn.Module) -> nn.Module:
    """A float64 copy with positive constant weights, zero biases, activations and norms as identity and
    max-pooling as average pooling: the input gradient of a unit is then positive exactly on its field."""
    net = copy.deepcopy(model).double().eval()
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LINEAR):
                setattr(module, name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                setattr(module, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
    with torch.no_grad():
        for module in net.modules():
            for name, p in module.named_parameters(recurse=False):
                p.fill_(0.0 if name == "bias" else 1.0 / (p[0].numel() if p.dim() > 1 else 1))
    return net


def _measured(model: nn.Module, channels: int, size: int):
    """The predicted window of the centre position of the last spatial map (all its channels) and the support
    of its input gradient."""
    net = _linearised(model)
    x = torch.ones(1, channels, size, size, dtype=torch.float64, requires_grad=True)
    tracer = FieldTracer()
    with tracer:
        out = net(tracer.watch(x))
    last = tracer.last_map(out)
    centre = [(n - 1) // 2 for n in last.size]
    index: list = [0] + [slice(None)] * (last.tensor.dim() - 1)  # every channel: Inception's are separate branches
    index[last.axes[0]], index[last.axes[1]] = centre
    last.tensor[tuple(index)].sum().backward()
    support = x.grad[0].abs().sum(0) > 0
    measured = [tuple(support.any(dim).nonzero().flatten()[[0, -1]].tolist()) for dim in (1, 0)]
    predicted = [last.field.span(centre[axis], axis) for axis in (0, 1)]
    return last.field, predicted, measured


def _check_unclipped(predicted, size: int) -> None:
    assert all(0 <= first and last < size for first, last in predicted), "input too small: the field is clipped"


def _truncated(name: str, children: int) -> nn.Module:
    """The first `children` top-level modules of a torchvision net, on the CPU (weights left uninitialised)."""
    net = _torchvision(name)
    body = getattr(net, "features", None) if name in ("densenet121", "convnext_tiny", "mobilenet_v3_small") else None
    return nn.Sequential(*list((body if body is not None else net).children())[:children]).to_empty(device="cpu")


@pytest.mark.parametrize("name, children, size, side", [
    ("resnet18", 6, 160, 99),  # conv1 … layer2: the 1×1 stride-2 shortcuts are a second, offset path
    ("googlenet", 6, 128, 43),  # conv1 … inception3a: four branches concatenated
    ("densenet121", 5, 96, 59),  # conv0 … denseblock1: every layer's map concatenated
    ("convnext_tiny", 2, 128, 76),  # stem + stage 1: depthwise 7×7, linear layers on channels-last maps
])
def test_field_of_truncated_torchvision_nets_equals_the_gradient_support(name, children, size, side):
    field, predicted, measured = _measured(_truncated(name, children), 3, size)
    _check_unclipped(predicted, size)
    assert measured == predicted and field.side == side


@pytest.mark.parametrize("name", [n for n in OURS if gallery.entry(n).family == "cnn"])
def test_gallery_field_of_the_app_cnns_equals_the_gradient_support(name):
    """Built for a larger input, so that the centre unit's field lies inside it."""
    spec, summary = gallery.entry(name), gallery.describe(name)
    step = 2 * summary.jump
    size = -(-(summary.receptive_field + 2 * step) // step) * step
    net = models.build(name, in_channels=spec.in_channels, num_classes=10, image_size=size,
                       **gallery.OWN_OPTIONS.get(name, {}))
    field, predicted, measured = _measured(net, spec.in_channels, size)
    _check_unclipped(predicted, size)
    assert measured == predicted
    assert summary.receptive_field == field.side


def test_squeeze_excitation_gives_every_unit_the_whole_image():
    field, predicted, measured = _measured(_truncated("mobilenet_v3_small", 2), 3, 64)  # stem + one SE block
    assert field.global_context and predicted[0][1] - predicted[0][0] + 1 == field.side < 64
    assert measured == [(0, 63), (0, 63)]
    assert gallery.describe("mobilenet_v3_small").global_context and not gallery.describe("resnet50").global_context


@pytest.mark.parametrize("name, side", [("alexnet", 195), ("vgg16", 212), ("inception_v3", 1311)])
def test_fields_equal_the_published_values(name, side):
    """Araujo, Norris & Sim, Distill 2019, table of receptive fields (same geometry as torchvision's)."""
    assert gallery.describe(name).receptive_field == side


def test_field_arithmetic_equals_the_layer_stack_formula():
    rng = random.Random(0)
    for _ in range(20):
        layers = [RFLayer(rng.choice(["conv", "pool"]), rng.choice([1, 2, 3, 5]), rng.choice([1, 2]),
                          rng.choice([0, 1]), 1) for _ in range(rng.randint(1, 6))]
        layers = [RFLayer(l.kind, l.kernel_size, l.stride, min(l.padding, l.kernel_size // 2), l.dilation)
                  for l in layers]
        with torch.device("meta"):
            net = nn.Sequential(*[nn.Conv2d(1, 1, l.kernel_size, l.stride, l.padding) if l.kind == "conv"
                                  else nn.AvgPool2d(l.kernel_size, l.stride, l.padding) for l in layers])
        last = network_field(net, (1, 256, 256))
        rows = receptive_field(layers)
        assert last.field.size == (rows[-1].size,) * 2 and last.field.jump == (rows[-1].jump,) * 2
        assert last.field.start == (rows[-1].start,) * 2


def test_per_layer_fields_grow_and_end_with_the_whole_image():
    layers = gallery.describe("vgg16").layers
    spatial = [layer.receptive_field for layer in layers if not layer.whole_image]
    assert spatial == sorted(spatial) and spatial[-1] == 212
    assert [layer.kind for layer in layers if layer.whole_image][0] == "Linear"


# ---- two 3×3 against one 5×5 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels, stacked", [(64, 2), (3, 3), (1, 2)])
def test_stacked_3x3_have_fewer_params_and_the_same_field(channels, stacked):
    result = gallery.stacked_vs_single(channels, stacked=stacked)
    kernel = 2 * stacked + 1
    assert result.stacked_params == stacked * 9 * channels**2 and result.single_params == kernel**2 * channels**2
    assert result.stacked_field == result.single_field == kernel


@pytest.mark.parametrize("channels, stacked", [(0, 2), (2.5, 2), (8, 1)])
def test_stacked_refuses_bad_input(channels, stacked):
    with pytest.raises(UserInputError):
        gallery.stacked_vs_single(channels, stacked=stacked)


# ---- CLI ----------------------------------------------------------------------------------------------------------

def test_cli_json(capsys):
    assert main(["gallery", "resnet18", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["params"] == 11_689_512 and data["input_size"] == 224 and data["receptive_field"] == 435
    assert data["macs"] == gallery.describe("resnet18").macs and data["acc1"] == pytest.approx(69.758)
    layer = data["layers"][0]
    assert set(layer) >= {"name", "kind", "output_shape", "params", "macs", "receptive_field"}
    assert layer["name"] == "conv1" and layer["output_shape"] == [64, 112, 112] and layer["receptive_field"] == 7
    assert main(["gallery", "lenet5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["acc1"] is None


def test_cli_unknown_name_exits_2_listing_the_names(capsys):
    assert main(["gallery", "lenet6", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lenet6" in err and "resnet50" in err and "vit_tiny" in err
