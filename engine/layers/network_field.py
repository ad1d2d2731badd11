"""The receptive field of a whole network, branches and skip connections included, traced through its operations.

Every tensor computed from the input carries, per spatial axis, its units' receptive field r, jump j
(input pixels between neighbouring units) and start s (the input coordinate where unit 0's window
begins; negative = in the padding). A convolution or pooling updates them as in Araujo et al.:
r ← r + D(K − 1)·j, s ← s − P·j, j ← j·S. An element-wise operation or a concatenation (a skip
connection, Inception's branches, DenseNet's concatenation) takes the union of its inputs' windows:
s = min sᵢ, r = max(sᵢ + rᵢ) − s. Global pooling or flattening ends the map: from there on every unit
sees the whole input, and a map gated by such a global summary (squeeze-and-excitation) is marked
`global_context`. The sizes are theoretical (unclipped): they may exceed the input.

The tracer is a TorchDispatchMode, so it sees functional calls too (F.max_pool2d inside Inception-v3's
blocks, torch.cat inside DenseNet's) and runs on the `meta` device, where no numbers are computed.

References:
    A. Araujo, W. Norris & J. Sim, "Computing receptive fields of convolutional neural networks",
        Distill (2019), https://distill.pub/2019/computing-receptive-fields/
    Hu, Shen & Sun 2018, "Squeeze-and-Excitation Networks", arXiv 1709.01507.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

aten = torch.ops.aten


@dataclass(frozen=True)
class Field:
    """What one unit of a feature map sees, per axis (height, width); sizes unclipped, in input pixels."""

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)
    start: tuple[int, int] = (0, 0)
    global_context: bool = False  # the units also depend on a summary of the whole input (SE gating)

    @property
    def side(self) -> int:
        """The side of the square that holds the field (the larger axis, e.g. after Inception-v3's 1×7)."""
        return max(self.size)

    def span(self, index: int, axis: int = 0) -> tuple[int, int]:
        """First and last input coordinate seen by unit `index` along `axis` (unclipped)."""
        first = self.start[axis] + index * self.jump[axis]
        return first, first + self.size[axis] - 1

    def after(self, kernel, stride, padding, dilation=(1, 1)) -> Field:
        """The field after a convolution or pooling window with these (per-axis) settings."""
        size = tuple(r + d * (k - 1) * j for r, d, k, j in zip(self.size, dilation, kernel, self.jump))
        start = tuple(s - p * j for s, p, j in zip(self.start, padding, self.jump))
        jump = tuple(j * s for j, s in zip(self.jump, stride))
        return Field(size, jump, start, self.global_context)


def union(fields: list[Field], global_context: bool = False) -> Field:
    """The field of an element-wise op over aligned maps: the union of the windows of one unit."""
    jump = fields[0].jump  # the maps have one shape, so one jump
    start = tuple(min(f.start[a] for f in fields) for a in (0, 1))
    end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in (0, 1))
    size = tuple(e - s for e, s in zip(end, start))
    return Field(size, jump, start, global_context or any(f.global_context for f in fields))


@dataclass(frozen=True)
class LastMap:
    """The network's last spatial feature map: its units' field, its (H, W), the tensor and the dims holding H, W."""

    field: Field
    size: tuple[int, int]
    tensor: Tensor = field(repr=False)
    axes: tuple[int, int] = (2, 3)


@dataclass(frozen=True)
class _Map:
    """A tracked tensor: its field, the dims holding H and W, or None once pooled away (it sees everything).

    `fold`: the leading dims a view merged into dim 0 (a linear layer on channels-last maps, as in
    ConvNeXt: (B, H, W, C) -> (B·H·W, C) -> (B, H, W, C')); the map comes back when they are unfolded.
    """

    field: Field
    axes: tuple[int, int] | None
    fold: tuple[int, ...] | None = None


def _pair(value) -> tuple[int, int]:
    values = [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    return (values[0], values[-1]) if values else (0, 0)


def _adaptive_window(n_in: int, n_out: int) -> tuple[int, int]:
    """Adaptive pooling's largest window and its step (windows [⌊i·n/m⌋, ⌈(i+1)·n/m⌉))."""
    kernel = max(math.ceil((i + 1) * n_in / n_out) - (i * n_in) // n_out for i in range(n_out))
    return kernel, max(1, n_in // n_out)


class FieldTracer(TorchDispatchMode):
    """Dispatch mode that propagates receptive fields from the input to every tensor of a forward pass.

    `watch(x)` marks the input; after the pass, `field(t)` is a tensor's field (None where its units
    see the whole input) and `last_map(output)` the field of the network's last spatial feature map.
    """

    def __init__(self):
        super().__init__()
        self._maps = WeakTensorKeyDictionary()
        self._pooled: LastMap | None = None  # the last map pooled or flattened away

    def watch(self, x: Tensor) -> Tensor:
        assert x.dim() == 4, "the input is one (B, C, H, W) batch"
        self._maps[x] = _Map(Field(), (2, 3))
        return x

    def field(self, tensor: Tensor) -> Field | None:
        found = self._maps.get(tensor)
        return found.field if found is not None and found.axes is not None and found.fold is None else None

    def is_tracked(self, tensor: Tensor) -> bool:
        return tensor in self._maps

    def last_map(self, output: Tensor) -> LastMap | None:
        """The output if it is still a map, else the last map before global pooling or flattening."""
        found = self._maps.get(output)
        if found is not None and found.axes is not None and found.fold is None:
            return _last(found, output)
        return self._pooled

    # ---- propagation -------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor) and t in self._maps]
        if inputs:
            outputs = [t for t in tree_flatten(out)[0] if isinstance(t, Tensor)]
            if outputs:
                self._propagate(func.overloadpacket, args, inputs, outputs)
        return out

    def _propagate(self, op, args, inputs: list[Tensor], outputs: list[Tensor]) -> None:
        first, maps = inputs[0], [self._maps[t] for t in inputs]
        spatial = [(t, m) for t, m in zip(inputs, maps) if m.axes is not None]
        context = any(m.field.global_context or m.axes is None for m in maps)
        if op is aten.convolution and first is args[0] and spatial and maps[0].axes == (2, 3):
            self._set_map(outputs[0], spatial, maps[0].field.after(
                tuple(args[1].shape[2:]), _pair(args[3]), _pair(args[4]), _pair(args[5])))
        elif op in (aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d) and spatial:
            kernel = _pair(args[1])
            stride = _pair(args[2]) if len(args) > 2 and args[2] else kernel  # [] = the kernel size
            padding = _pair(args[3]) if len(args) > 3 else (0, 0)
            dilation = _pair(args[4]) if op is not aten.avg_pool2d and len(args) > 4 else (1, 1)
            for t in outputs:  # max pooling's indices share the output's layout
                self._set_map(t, spatial, maps[0].field.after(kernel, stride, padding, dilation))
        elif op in (aten._adaptive_avg_pool2d, aten.adaptive_max_pool2d) and spatial and \
                tuple(outputs[0].shape[-2:]) not in ((1, 1), tuple(first.shape[-2:])):
            windows = [_adaptive_window(n, m) for n, m in zip(first.shape[-2:], outputs[0].shape[-2:])]
            field = maps[0].field.after(tuple(k for k, _ in windows), tuple(s for _, s in windows), (0, 0))
            for t in outputs:
                self._set_map(t, spatial, field)
        elif op in (aten.permute, aten.transpose) and spatial and maps[0].fold is None:
            dims = list(range(first.dim()))
            if op is aten.permute:
                dims = [d % first.dim() for d in args[1]]
            else:
                a, b = (d % first.dim() for d in args[1:3])
                dims[a], dims[b] = dims[b], dims[a]
            axes = maps[0].axes
            self._maps[outputs[0]] = _Map(maps[0].field, (dims.index(axes[0]), dims.index(axes[1])))
        elif op in (aten.view, aten._unsafe_view, aten.reshape) and spatial:
            self._view(first, maps[0], outputs[0])
        else:
            self._elementwise(spatial, context, outputs)

    def _set_map(self, tensor: Tensor, spatial, field: Field) -> None:
        context = field.global_context or any(m.field.global_context for _, m in spatial)
        self._maps[tensor] = _Map(Field(field.size, field.jump, field.start, context), (2, 3))

    def _view(self, source: Tensor, m: _Map, out: Tensor) -> None:
        last = max(m.axes)
        if m.fold is None and out.shape[:last + 1] == source.shape[:last + 1]:
            self._maps[out] = m  # only dims after H and W changed
            return
        if m.fold is None:
            for k in range(last + 1, source.dim()):
                if out.dim() >= 1 and math.prod(source.shape[:k]) == out.shape[0]:
                    self._maps[out] = _Map(m.field, m.axes, tuple(source.shape[:k]))
                    return
        elif tuple(out.shape[:len(m.fold)]) == m.fold:
            self._maps[out] = _Map(m.field, m.axes)  # unfolded again
            return
        elif out.dim() >= 1 and out.shape[0] == source.shape[0]:
            self._maps[out] = m
            return
        self._pool_away(source, m, out)

    def _elementwise(self, spatial, context: bool, outputs: list[Tensor]) -> None:
        """Outputs laid out like the spatial inputs get the union of their windows; else the map ends."""
        for index, out in enumerate(outputs):
            aligned = [m for t, m in spatial if self._aligned(t, m, out)]
            if spatial and len(aligned) == len(spatial):
                m = aligned[0]
                self._maps[out] = _Map(union([a.field for a in aligned], context), m.axes, m.fold)
            elif index == 0:  # extra outputs (batch-norm statistics) are not feature maps
                if spatial:
                    self._pool_away(*spatial[-1], out)
                else:
                    self._maps[out] = _Map(Field(global_context=True), None)

    @staticmethod
    def _aligned(t: Tensor, m: _Map, out: Tensor) -> bool:
        if out.dim() != t.dim():
            return False
        if m.fold is not None:
            return out.shape[0] == t.shape[0]
        return all(out.shape[a] == t.shape[a] for a in m.axes)

    def _pool_away(self, source: Tensor, m: _Map, out: Tensor) -> None:
        if m.fold is None:
            self._pooled = _last(m, source)
        self._maps[out] = _Map(Field(global_context=True), None)


def _last(m: _Map, tensor: Tensor) -> LastMap:
    return LastMap(m.field, (tensor.shape[m.axes[0]], tensor.shape[m.axes[1]]), tensor, m.axes)


def network_field(model: nn.Module, input_shape: tuple[int, int, int], *,
                  device: torch.device | str = "meta") -> LastMap:
    """The last spatial feature map of `model` on one (C, H, W) input: its units' field and its size.

    Run on the `meta` device by default (the model must live there too): shapes only, no numbers.
    """
    tracer = FieldTracer()
    with torch.no_grad(), tracer:
        out = model(tracer.watch(torch.zeros(1, *input_shape, device=device)))
    found = tracer.last_map(out if isinstance(out, Tensor) else tree_flatten(out)[0][0])
    if found is None:
        raise ValueError("the network has no spatial feature map")
    return found
