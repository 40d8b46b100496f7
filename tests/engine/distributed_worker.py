"""Run by tests/engine/test_distributed.py under torchrun: each process trains a tiny network through engine.train
(gloo on the CPU) and process 0 writes every process's weight checksum and step count to the file named by argv[1]."""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from engine import distributed
from engine.classes import parse_classes
from engine.events import Events
from engine.points import PixelLabels
from engine.train import TrainOptions, train


def main(image: str, out: str) -> None:
    device = distributed.start("train", torch.device("cpu"))
    labels = PixelLabels(np.array([5, 40, 60, 90]), np.array([5, 40, 60, 90]), np.array([0, 1, 2, 1]))
    options = TrainOptions(epochs=2, batch_size=2, patch_size=64, patches_per_epoch=8, forest_ensemble=False,
                           prior_correction=False, flip_views=1, expand_clicks=False)  # fmt: skip
    events = Events("text") if distributed.world().lead else distributed.Silent()
    result = train([Path(image)], [labels], [1, 2, 3], parse_classes("a,b,c"), options, device, events)
    mine = torch.tensor([sum(float(p.double().sum()) for p in result.network.parameters()), result.steps],
                        dtype=torch.float64)  # fmt: skip
    every = [torch.zeros(2, dtype=torch.float64) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    if distributed.world().lead:
        Path(out).write_text(json.dumps([e.tolist() for e in every]))
    distributed.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
