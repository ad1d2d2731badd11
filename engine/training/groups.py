"""Parameter groups and frozen modules: per-module learning rates, freezing, and stages that change them.

Modules are named by prefix of their parameter names ("block1", "fc", "block2.0"); the longest
matching prefix wins. A frozen module has `requires_grad` off, so the optimizer skips it (no
gradient, no step, no weight decay), and stays in eval mode while the rest trains, so its
BatchNorm running statistics do not move and its dropout is off. Stages run one after another in
one run: e.g. train the new head with the source network frozen, then unfreeze all at lr ÷ 10.

References:
    Yosinski et al. 2014, "How transferable are features in deep neural networks?", arXiv 1411.1792.
    Howard & Ruder 2018, "Universal Language Model Fine-tuning" (gradual unfreezing), arXiv 1801.06146.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from engine.errors import UserInputError

STAGE_OPTIONS = ("epochs", "freeze", "lr_factors")


@dataclass(frozen=True)
class Stage:
    epochs: int
    freeze: tuple[str, ...] = ()
    lr_factors: dict[str, float] = field(default_factory=dict)  # prefix -> multiplier of the base lr


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _longest(name: str, prefixes) -> str | None:
    found = [p for p in prefixes if _matches(name, p)]
    return max(found, key=len) if found else None


def stages_of(*, epochs: int, freeze: list[str], lr_factors: dict[str, float], stages: list[dict]) -> list[Stage]:
    """The run's stages: `stages` as given (their epochs must add up to `epochs`), else one stage."""
    if not stages:
        return [Stage(epochs, tuple(freeze), dict(lr_factors))]
    out = []
    for index, spec in enumerate(stages, 1):
        unknown = sorted(set(spec) - set(STAGE_OPTIONS))
        if unknown:
            raise UserInputError(f"stage {index} has no option {', '.join(unknown)}; "
                                 f"its options are {', '.join(STAGE_OPTIONS)}")
        n = spec.get("epochs")
        if not isinstance(n, int) or n < 1:
            raise UserInputError(f"stage {index} epochs must be a whole number ≥ 1; got {n!r}")
        out.append(Stage(n, tuple(spec.get("freeze", ())), dict(spec.get("lr_factors", {}))))
    if sum(s.epochs for s in out) != epochs:
        raise UserInputError(f"the stages' epochs must add up to epochs ({epochs}); "
                             f"got {' + '.join(str(s.epochs) for s in out)}")
    return out


class ParameterGroups:
    """The optimizer's parameter groups for `model` and, per stage, which modules train and how fast."""

    def __init__(self, model: nn.Module, stages: list[Stage]):
        self.model, self.stages = model, stages
        names = [n for n, _ in model.named_parameters()]
        for stage in stages:
            for prefix, factor in stage.lr_factors.items():
                if not (isinstance(factor, (int, float)) and factor > 0):
                    raise UserInputError(f"learning-rate factor for {prefix!r} must be > 0; got {factor!r}")
            for prefix in (*stage.freeze, *stage.lr_factors):
                if not any(_matches(n, prefix) for n in names):
                    top = ", ".join(n for n, _ in model.named_children())
                    raise UserInputError(f"no module with parameters is called {prefix!r}; "
                                         f"the model's modules are {top}")
        # one group per distinct prefix with a factor in any stage; "" = the rest
        keys = sorted({p for s in stages for p in s.lr_factors}, key=len)
        by_key: dict[str, list[nn.Parameter]] = {}
        for name, param in model.named_parameters():
            by_key.setdefault(_longest(name, keys) or "", []).append(param)
        self.keys = list(by_key)
        self._params = by_key
        self._original = {name: p.requires_grad for name, p in model.named_parameters()}

    def param_groups(self) -> list[dict]:
        return [{"params": self._params[key]} for key in self.keys]

    def stage_at(self, epoch: int) -> Stage:
        """The stage epoch `epoch` (1-based) belongs to."""
        end = 0
        for stage in self.stages:
            end += stage.epochs
            if epoch <= end:
                return stage
        return self.stages[-1]

    def lr_factors(self, stage: Stage) -> list[float]:
        """Per optimizer group, its multiplier of the base learning rate in `stage`."""
        factors = []
        for key in self.keys:
            prefix = _longest(key, stage.lr_factors) if key else None
            factors.append(float(stage.lr_factors[prefix]) if prefix is not None else 1.0)
        return factors

    def freeze(self, stage: Stage) -> list[nn.Module]:
        """Set `requires_grad` for `stage`; return the frozen modules (to put in eval mode every epoch)."""
        for name, param in self.model.named_parameters():
            param.requires_grad_(self._original[name] and _longest(name, stage.freeze) is None)
        return [m for n, m in self.model.named_modules() if n and _longest(n, stage.freeze) is not None]

    def restore(self) -> None:
        """Give every parameter back the `requires_grad` it had before training."""
        for name, param in self.model.named_parameters():
            param.requires_grad_(self._original[name])
