"""`gallery`: one network of the architecture gallery, layer by layer, built on the meta device.

    python -m engine gallery resnet50 --json
    python -m engine gallery vgg16

Prints a table of layers (output shape, parameters, MACs, receptive field) and the totals; with
--json, one JSON object last: params, macs (per image at input_size), receptive_field (pixels),
input_size, acc1 (ImageNet top-1 of torchvision's DEFAULT weights; null for the app's models), layers.
"""

from __future__ import annotations

import argparse
import json

from engine.models import gallery

HELP = "describe a gallery network: per layer shape, parameters, MACs, receptive field"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="one of: " + ", ".join(gallery.names()))
    parser.add_argument("--json", action="store_true", help="print a JSON object last")


def run(args: argparse.Namespace) -> None:
    summary = gallery.describe(args.name)  # an unknown name raises UserInputError listing the valid ones
    if not args.json:
        print(f"{'layer':48s} {'kind':22s} {'output':>16s} {'params':>12s} {'MACs':>14s} {'field':>6s}")
        for layer in summary.layers:
            shape = "×".join(map(str, layer.output_shape))
            field = "all" if layer.whole_image else str(layer.receptive_field)
            print(f"{layer.name or '(top level)':48.48s} {layer.kind:22.22s} {shape:>16s} {layer.params:>12,} "
                  f"{layer.macs:>14,} {field:>6s}")
    acc = f", ImageNet top-1 {summary.acc1:.1f} %" if summary.acc1 is not None else ""
    print(f"{summary.title}: {summary.params:,} parameters, {summary.macs:,} MACs per "
          f"{summary.in_channels}×{summary.input_size}×{summary.input_size} image{acc}; "
          f"receptive field {summary.receptive_field_note}")
    if args.json:
        print(json.dumps(summary.to_dict()))
