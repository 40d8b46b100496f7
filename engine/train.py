"""The training loop: sparse labels, patches, the chosen loss, warm start, autocast on CUDA and on a CPU with native
bf16, channels-last on CPU and CUDA, cancel between steps."""

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from engine import cancel
from engine.affinity import affinity_loss
from engine.classes import ClassInfo
from engine.consistency import consistency_loss, strong_view
from engine.corrections import corrections
from engine.device import amp_dtype, autocast, memory_format, precision_name, to_layout
from engine.distill import distill_loss
from engine.distributed import parallel, world
from engine.errors import InputError
from engine.events import Events, plain
from engine.expansion import ExpansionOptions, expand_clicks
from engine.flips import KEY as FLIPS_KEY
from engine.flips import VIEWS
from engine.forest import ForestOptions, train_forest
from engine.forest_prior import ForestPriorOptions, forest_labels
from engine.hybrid import FOREST_WEIGHT, HybridModel, save_hybrid
from engine.losses import make_loss
from engine.models import (
    DEFAULT_ARCH,
    DEFAULT_DECODERS,
    DEFAULT_ENCODER,
    IGNORE_INDEX,
    ModelConfig,
    build_network,
    load_model,
    save_model,
)
from engine.normalization import compute_normalization
from engine.points import PixelLabels
from engine.predict import predict_probabilities
from engine.pretrain import pretrain
from engine.prior import KEY as PRIOR_KEY
from engine.prior import WINDOW, factor_of, mean_probabilities
from engine.sampling import PatchSampler, RasterSource
from engine.smoothing import KEY as SMOOTHING_KEY
from engine.smoothing import settings as smoothing_settings
from engine.weight_average import WeightAverage


@dataclass
class TrainOptions:
    arch: str = DEFAULT_ARCH
    encoder: str = DEFAULT_ENCODER
    encoder_weights: str | None = None
    decoder_channels: tuple[int, ...] | None = None  # the decoder's channels per stage; None: the engine's default
    # for the architecture (engine.models.DEFAULT_DECODERS; a U-Net's is lighter than smp's), filled in on creation
    epochs: int = 20
    batch_size: int = 8
    patch_size: int = 256
    lr: float = 1e-3
    warm_lr: float | None = 3e-4  # the learning rate when continuing a model (--init); None: ``lr``. Measured: a
    # gentler warm start avoids the collapses after error clicks (docs/benchmarks.md, "A gentler warm start")
    loss: str = "dwcd+ce"  # measured: learns faster from few points than dwcd alone (docs/benchmarks.md)
    amplification: float = 5.0
    patches_per_epoch: int | None = None  # default: the rasters' area in patches, between 4 batches and 512 patches
    context_fraction: float = 0.25  # share of the patches drawn anywhere; the others hold a labelled pixel
    jitter: float = 0.0  # colour augmentation per band and patch (engine/sampling.py); 0.2 measured: no gain, off
    # The default recipe, chosen by measurement (docs/benchmarks.md, "Label efficiency by recipe"):
    expand_clicks: bool = True  # spread each click over the similar pixels of its superpixel (engine/expansion.py)
    expansion_weight: float = ExpansionOptions.weight  # the loss weight of a spread label (a click weighs 1)
    expansion_consensus: bool = ExpansionOptions.consensus  # spread only where most of 5 superpixel sizes agree
    expansion_region: int = ExpansionOptions.region  # the superpixels' side in pixels that clicks spread over
    expand_corrections: bool = True  # when continuing a model, also spread the clicks where it predicts another
    # class (engine/corrections.py); off: those count as clicks only
    correction_region: int | None = None  # the superpixels' side those clicks spread over; None: expansion_region
    consistency: float = 0.0  # weight of the consistency loss on unlabelled pixels (engine/consistency.py); 0: off
    consistency_threshold: float = 0.9
    distill: float = 1.0  # a continued model's KL from the model it continues, off the clicks (engine/distill.py);
    # measured: +0.010 mIoU over the loop, 10 paired runs (docs/benchmarks.md, "Distillation from the model continued")
    distill_threshold: float = 0.0  # ... only where the model it continues is at least this confident
    distill_batch_stats: bool = False  # the model continued normalises each batch by its own statistics, as the
    # model trained does, instead of by its running ones; off: it predicts as it maps
    affinity: float = 0.0  # weight of an edge-aware smoothness loss on every pixel (engine/affinity.py); 0: off
    weight_average: float = 0.0  # keep an average of the weights over about this share of the run's last steps
    # and save it (engine/weight_average.py); 0: off
    forest_prior: bool = False  # weak labels from a random forest fit on the clicks (engine/forest_prior.py)
    pretrain_steps: int = 0  # self-supervised warm-up steps before the first training (engine/pretrain.py)
    lr_schedule: str = "cosine"  # the learning rate decays to 0 over each run (steadier final models); or "constant"
    forest_ensemble: bool = True  # also fit a random forest on the clicks and average the two (engine/hybrid.py)
    forest_expansion: bool = False  # the forest also learns from the clicks' expansion (measured: no gain; off)
    prior_correction: bool = True  # correct predictions for the clicks' class balance (engine/prior.py)
    superpixel_smoothing: bool = True  # smooth predictions over the image's superpixels (engine/smoothing.py)
    flip_views: int = VIEWS  # average the network's predictions over flips of each tile (engine/flips.py); 1: off
    seed: int = 0

    def __post_init__(self):
        if self.decoder_channels is None:
            self.decoder_channels = DEFAULT_DECODERS.get(self.arch)


@dataclass
class TrainResult:
    config: ModelConfig
    network: torch.nn.Module
    epochs: int
    steps: int
    final_loss: float
    seconds: float
    hybrid: HybridModel | None = None  # with options.forest_ensemble: the network and its forest

    @property
    def model(self) -> torch.nn.Module | HybridModel:
        """What predicts: the hybrid when a forest was fit, else the network."""
        return self.hybrid if self.hybrid is not None else self.network


STORED_ELSEWHERE = ("arch", "encoder", "decoder_channels", "patch_size")  # config.json's own fields


def recorded_options(options: TrainOptions) -> dict:
    """The options of a training that config.json does not hold elsewhere (its loss weights, schedule, seed...), so
    that a model says how its last training was run."""
    return plain({key: value for key, value in asdict(options).items() if key not in STORED_ELSEWHERE})


def _click_regions(network: torch.nn.Module, sources: list[RasterSource], clicks: list[PixelLabels],
                   options: TrainOptions, continued: bool, device: torch.device, events: Events) -> list:  # fmt: skip
    """Per raster, each label's superpixel side to spread over (None: ``options.expansion_region`` for all): when
    continuing a model, the clicks that correct it get ``options.correction_region``, or 0 (no spread) with
    ``expand_corrections`` off (engine/corrections.py)."""
    side = (options.correction_region or options.expansion_region) if options.expand_corrections else 0
    if not continued or side == options.expansion_region:
        return [None] * len(sources)
    found = [corrections(network, src, lab, device) for src, lab in zip(sources, clicks, strict=True)]
    how = f"spread over {side} px superpixels" if side else "not spread"
    events.info(f"clicks that correct the model continued, {how}: {sum(int(f.sum()) for f in found)}")
    return [np.where(f, side, options.expansion_region) for f in found]


def seed_everything(seed: int, device: torch.device) -> np.random.Generator:
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def patches_per_epoch(sources: list[RasterSource], options: TrainOptions) -> int:
    if options.patches_per_epoch:
        return options.patches_per_epoch
    area = sum(s.height * s.width for s in sources) / options.patch_size**2
    return int(min(512, max(4 * options.batch_size, math.ceil(area))))


def check_init(config: ModelConfig, init: Path, classes: list[ClassInfo], bands: list[int]) -> None:
    """A warm start needs the same classes (in order) and bands as the model it continues."""
    if config.class_names != [c.name for c in classes]:
        raise InputError(
            f"--init: the model in {init} has classes {','.join(config.class_names)}, not "
            f"{','.join(c.name for c in classes)}; train a new model or use its classes",
            "init",
        )
    if config.bands != bands:
        raise InputError(
            f"--init: the model in {init} reads bands {config.bands}, not {bands}; "
            f"use the same bands or train a new model",
            "init",
        )


def prepare(
    rasters: list[Path],
    bands: list[int],
    classes: list[ClassInfo],
    options: TrainOptions,
    init: Path | None,
    device: torch.device,
) -> tuple[torch.nn.Module, ModelConfig]:
    """The network and config to train: fresh, or continued from ``init`` (classes and bands must match)."""
    if init is not None:
        network, config = load_model(init, device, "init")
        check_init(config, init, classes, bands)
        config.classes = classes  # colours may have changed
        return network.train(), config
    normalization = compute_normalization(rasters, bands)
    decoder = None if options.decoder_channels is None else list(options.decoder_channels)
    network = build_network(options.arch, options.encoder, len(bands), len(classes), options.encoder_weights, decoder)
    config = ModelConfig(options.arch, options.encoder, len(bands), bands, normalization, classes, options.patch_size,
                         decoder_channels=decoder)  # fmt: skip
    return network.to(device), config


def train(
    rasters: list[Path],
    labels: list[PixelLabels],
    bands: list[int],
    classes: list[ClassInfo],
    options: TrainOptions,
    device: torch.device,
    events: Events,
    init: Path | None = None,
    out: Path | None = None,
) -> TrainResult:
    """Train on the labelled pixels of ``rasters``; save to ``out`` (atomically) when given."""
    start = time.monotonic()
    rng = seed_everything(options.seed, device)
    network, config = prepare(rasters, bands, classes, options, init, device)
    network.to(memory_format=memory_format(device))  # before the optimizer sees its parameters
    sources = [RasterSource(p, bands, config.normalization) for p in rasters]
    clicks = labels
    try:
        if options.pretrain_steps and init is None:
            recon = pretrain(network, config.arch, config.encoder, sources, options.pretrain_steps,
                             options.batch_size, options.patch_size, device, events, rng)  # fmt: skip
            events.metric("pretrain_loss", recon)
        expanded = clicks
        if options.expand_clicks or (options.forest_ensemble and options.forest_expansion):
            spread = ExpansionOptions(region=options.expansion_region, weight=options.expansion_weight,
                                      consensus=options.expansion_consensus)  # fmt: skip
            regions = _click_regions(network, sources, clicks, options, init is not None, device, events)
            expanded = [expand_clicks(src.read, lab, spread, r) for src, lab, r in zip(sources, clicks, regions,
                                                                                      strict=True)]  # fmt: skip
            events.info(f"labels spread from the clicks: {sum(len(lab) for lab in expanded)} labelled pixels")
        if options.expand_clicks:
            labels = expanded
        if options.forest_prior:
            labels = forest_labels(sources, labels, len(classes), ForestPriorOptions(), rng)
            events.info(f"with the forest's weak labels: {sum(len(lab) for lab in labels)} labelled pixels")
        here = world()  # under torchrun each process draws patches of its own and takes 1/size of the steps
        own = rng if here.rank == 0 else np.random.default_rng([options.seed, here.rank])
        sampler = PatchSampler(
            sources, labels, options.patch_size, own, options.context_fraction, jitter=options.jitter
        )
        loss_fn = make_loss(options.loss, options.amplification, IGNORE_INDEX)
        lr = options.warm_lr if init is not None and options.warm_lr else options.lr
        optimizer = torch.optim.Adam(network.parameters(), lr=lr)
        steps_per_epoch = max(1, math.ceil(patches_per_epoch(sources, options) / (options.batch_size * here.size)))
        teacher = (
            _frozen_copy(network, options.distill_batch_stats) if init is not None and options.distill > 0 else None
        )
        final_loss, steps = _loop(network, sampler, loss_fn, optimizer, options, steps_per_epoch, device, events,
                                  teacher)  # fmt: skip
    finally:
        for source in sources:
            source.close()
    if not here.lead:  # rank 0 fits the forest and saves, for all
        return TrainResult(config, network, options.epochs, steps, final_loss, time.monotonic() - start, None)
    previous = config.trained
    config.trained = {
        "epochs": previous.get("epochs", 0) + options.epochs,
        "iterations": previous.get("iterations", 0) + 1,
        "points": int(sum(int((lab.weight_array() >= 1).sum()) for lab in labels)),
        "loss": options.loss,
        "final_loss": final_loss,
        "precision": precision_name(device),
        "options": recorded_options(options),
        **({"processes": here.size} if here.size > 1 else {}),
    }
    network.eval()
    if options.flip_views > 1:  # before the prior correction, which must see the predictions it corrects
        config.trained[FLIPS_KEY] = int(options.flip_views)
    hybrid = None
    if options.forest_ensemble:
        hybrid = _fit_forest(network, rasters, expanded if options.forest_expansion else clicks, bands, classes, config,
                             options, events)  # fmt: skip
    if options.prior_correction:
        _correct_prior(hybrid or network, config, rasters, bands, clicks, device, rng, events)
    if options.superpixel_smoothing:
        config.trained[SMOOTHING_KEY] = smoothing_settings()
    if out is not None and hybrid is not None:
        save_hybrid(out, hybrid, config)
    elif out is not None:
        save_model(out, network, config)
    return TrainResult(config, network, options.epochs, steps, final_loss, time.monotonic() - start, hybrid)


def _correct_prior(model, config: ModelConfig, rasters, bands, clicks, device, rng, events) -> None:
    """Store the class-prior factor of engine/prior.py in ``config.trained`` (from the uncorrected predictions)."""
    events.info("estimating the classes' shares of the map from a sample of the rasters")

    def predict(image, valid):
        return predict_probabilities(model, config, image, valid, device, tile_size=WINDOW, overlap=32).probs

    mean = mean_probabilities(predict, rasters, bands, len(config.classes), rng)
    factor = factor_of(mean, np.concatenate([lab.classes for lab in clicks]).astype(np.int64))
    if factor is not None:
        config.trained[PRIOR_KEY] = [round(float(f), 4) for f in factor]


def _fit_forest(network, rasters, labels, bands, classes, config: ModelConfig, options: TrainOptions,
                events) -> HybridModel:  # fmt: skip
    """The forest of the hybrid, on ``labels`` (the clicks; with ``options.forest_expansion``, also their weighted
    superpixel expansion: docs/benchmarks.md, "Flip averaging"), reading the network's normalisation."""
    events.info("fitting the random forest that the network's predictions are averaged with")
    forest, forest_config = train_forest(rasters, labels, bands, classes, ForestOptions(seed=options.seed), events,
                                         config.normalization)  # fmt: skip
    config.trained["forest"] = {"trees": forest.n_trees, "weight": FOREST_WEIGHT}
    return HybridModel(network, forest, forest_config)


def _frozen_copy(network: torch.nn.Module, batch_stats: bool = False) -> torch.nn.Module:
    """A copy of ``network`` without gradients; in train mode with ``batch_stats`` (its batch norms then use each
    batch's statistics; the running ones it updates are the copy's own and are thrown away with it)."""
    teacher = copy.deepcopy(network).train(batch_stats)
    teacher.requires_grad_(False)
    return teacher


def _loop(network, sampler, loss_fn, optimizer, options, steps_per_epoch, device, events,
          teacher=None) -> tuple[float, int]:  # fmt: skip
    total = options.epochs * steps_per_epoch
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(device) == torch.float16)
    network.train()
    forward = parallel(network, device)  # under torchrun: gradients averaged over the processes
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total) if options.lr_schedule == "cosine" else None
    )
    average = WeightAverage(network, options.weight_average, total) if options.weight_average > 0 else None
    step, epoch_loss = 0, float("nan")
    for epoch in range(1, options.epochs + 1):
        losses = []
        for _ in range(steps_per_epoch):
            cancel.check()
            images, targets, weights = (torch.from_numpy(a).to(device) for a in sampler.batch(options.batch_size))
            images = to_layout(images, device)
            if options.consistency > 0:
                strong, flipped = strong_view(images)
                with autocast(device):
                    logits, strong_logits = forward(torch.cat([images, strong])).chunk(2)
                loss = loss_fn(logits.float(), targets, weights) + options.consistency * consistency_loss(
                    logits, strong_logits, flipped, options.consistency_threshold
                )
            else:
                with autocast(device):
                    logits = forward(images)
                loss = loss_fn(logits.float(), targets, weights)
            if teacher is not None:
                with torch.no_grad(), autocast(device):
                    old = teacher(images)
                unlabelled = targets == IGNORE_INDEX
                loss = loss + options.distill * distill_loss(logits, old, unlabelled, options.distill_threshold)
            if options.affinity > 0:
                loss = loss + options.affinity * affinity_loss(logits, images)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            if average is not None:
                average.update(network)
            losses.append(float(loss.detach()))
            step += 1
            events.progress("train", step, total)
        epoch_loss = float(np.mean(losses))
        events.metric("loss", epoch_loss, epoch=epoch)
    if average is not None:
        average.copy_to(network)
    return epoch_loss, step
