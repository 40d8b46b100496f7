"""Training on several processes with PyTorch's own runtime: ``torchrun --nproc_per_node N -m engine train ...``.

torchrun starts N copies of the engine and tells each its ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``. Each copy
trains the same network (DistributedDataParallel averages the gradients of every step over the copies: NCCL between
GPUs, gloo between CPU processes) on patches of its own, so an epoch's patches are shared out and take 1/N of the
steps. Rank 0 alone writes events, fits the forest and saves the model; the others stay silent and exit after the
last step. One GPU per process: a copy uses ``cuda:LOCAL_RANK``.
"""

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from engine.errors import InputError
from engine.events import Events

log = logging.getLogger("engine")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def lead(self) -> bool:
        """The process that reports and writes (rank 0; the only one without torchrun)."""
        return self.rank == 0


def world() -> World:
    """This process's place among torchrun's processes (rank 0 of 1 without torchrun)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))  # fmt: skip
    except ValueError as exc:
        raise InputError(
            f"RANK, WORLD_SIZE, LOCAL_RANK must be integers (torchrun sets them): {exc}", "device"
        ) from exc


def start(command: str, device: torch.device) -> torch.device:
    """Join the process group when torchrun started several processes; the device this process trains on."""
    here = world()
    if here.size == 1:
        return device
    if command != "train":
        raise InputError(f"{command} runs in one process: run it without torchrun (several processes are for train)",
                         "device")  # fmt: skip
    if device.type == "cuda":
        if torch.cuda.device_count() <= here.local_rank:
            raise InputError(f"--device: process {here.local_rank} has no GPU of its own ({torch.cuda.device_count()} "
                             "visible); start at most one process per GPU", "device")  # fmt: skip
        device = torch.device("cuda", here.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise InputError(f"--device: torchrun runs on cuda or cpu processes, not {device.type}", "device")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def parallel(network: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``network`` as its training steps run it: wrapped so that backward averages the gradients over the
    processes (and the start broadcasts rank 0's weights), or itself in a single process."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return network
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=ids)


class Silent(Events):
    """The events of a process other than rank 0: none (rank 0 reports for all), but an error goes to stderr, where
    torchrun shows it."""

    def __init__(self):
        super().__init__("json", open(os.devnull, "w"))  # noqa: SIM115 - open for the process's life

    def error(self, code: str, message: str, field: str | None = None) -> None:
        log.error("rank %d: %s", world().rank, message)
