"""An exponential moving average of a network's weights over its training steps (Polyak averaging, as in a mean
teacher). A run from a few clicks takes tens to hundreds of noisy steps; the average over its last part can be a
steadier model than its last step. The window is a share of the run's steps, so it means the same at any budget.
"""

import torch


class WeightAverage:
    """The average of ``network``'s floating-point weights and batch-norm statistics over about the last ``window``
    share of ``total`` steps (decay 1 - 1 / (window * total)), with the usual warm-up: step t's decay is at most
    (1 + t) / (10 + t), so the first steps do not keep the starting weights (random ones, for a new model)."""

    def __init__(self, network: torch.nn.Module, window: float, total: int):
        self.decay = max(0.0, 1.0 - 1.0 / max(1.0, window * total))
        self.steps = 0
        self.state = {k: v.detach().clone() for k, v in network.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, network: torch.nn.Module) -> None:
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        self.steps += 1
        current = network.state_dict()
        for key, average in self.state.items():
            average.lerp_(current[key].detach(), 1.0 - decay)

    def copy_to(self, network: torch.nn.Module) -> None:
        """Give ``network`` the averaged weights and statistics (its other buffers, such as counters, stay)."""
        network.load_state_dict(self.state, strict=False)
