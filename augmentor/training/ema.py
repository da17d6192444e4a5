"""Model EMA: an exponential moving average of a module's weights, the one every trainer keeps."""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """An exponential moving average of a module's weights (model EMA, as timm's ModelEmaV2), its decay ramped
    as min(decay, (1 + t) / (10 + t)) so early steps do not pin it to the initial weights.

    ``average_buffers``: floating buffers (BatchNorm's running statistics) are averaged like the weights, as a
    classifier evaluates them with the averaged weights; otherwise every buffer follows the live module, as the
    generators' samplers keep them. Integer buffers (counters) always follow the live module.
    """

    def __init__(self, module: torch.nn.Module, decay: float, *, average_buffers: bool = True) -> None:
        self.model = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay, self.updates, self.average_buffers = decay, 0, average_buffers

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        if self.average_buffers:
            ours = [t for t in self.model.state_dict().values() if t.is_floating_point()]
            theirs = [t.detach() for t in module.state_dict().values() if t.is_floating_point()]
        else:
            ours = list(self.model.parameters())
            theirs = [p.detach() for p in module.parameters()]
        torch._foreach_lerp_(ours, theirs, 1 - decay)
        for mine, live in zip(self.model.buffers(), module.buffers(), strict=True):
            if not (self.average_buffers and mine.is_floating_point()):
                mine.copy_(live)
