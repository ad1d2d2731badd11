"""Attribution timings on resnet18 (random weights) for one 224×224 image, on 2 torch threads.

Times Saliency, Integrated Gradients (32 steps), SmoothGrad (8 samples), Grad-CAM, Guided Backprop
and Occlusion (56-pixel patch, stride 28: the page's default) with engine.explain.attributions, the
same code the Saliency page runs. Prints the median of `--repeats` runs and the other processes'
CPU share, since the machine is shared. Anything over 1 s gets a progress bar on the page.

    python benchmarks/attributions.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
from collections import OrderedDict

from _timing import Contention, setup, timed

THREADS = setup()

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

from engine.explain import attributions  # noqa: E402
from engine.models.blocks import Normalize  # noqa: E402

CASES = [  # method, settings
    ("saliency", attributions.AttributionConfig()),
    ("integrated_gradients", attributions.AttributionConfig(steps=32)),
    ("smoothgrad", attributions.AttributionConfig(samples=8)),
    ("grad_cam", attributions.AttributionConfig()),
    ("guided_backprop", attributions.AttributionConfig()),
    ("occlusion", attributions.AttributionConfig()),  # window 56, stride 28 → 49 + 1 forward passes
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    net = torchvision.models.resnet18()
    model = nn.Sequential(OrderedDict([("normalize", Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
                                       ("net", net)])).eval()
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    attributions.attribute(model, x, "saliency", target=0)  # warm-up
    print(f"resnet18, random weights, 1×3×224×224, {THREADS} torch threads, median of {args.repeats}")
    with Contention() as contention:
        for name, config in CASES:
            times = [timed(lambda: attributions.attribute(model, x, name, target=0, layer="net.layer4", config=config))
                     for _ in range(args.repeats)]
            detail = {"integrated_gradients": " (32 steps)", "smoothgrad": " (8 samples)",
                      "occlusion": " (56 px patch, stride 28)"}.get(name, "")
            print(f"{attributions.method(name).title + detail:<40} {statistics.median(times):6.2f} s")
    print(contention.describe())


if __name__ == "__main__":
    main()
