"""The network-training options that `train` and `simulate` share: declared, checked and read in one place."""

import argparse
from dataclasses import fields

from engine.errors import InputError
from engine.flips import CHOICES as FLIP_CHOICES
from engine.losses import LOSSES
from engine.models import DEFAULT_ARCH, DEFAULT_ENCODER
from engine.train import TrainOptions


def add_training_arguments(parser, epochs: int = 20) -> None:
    """Add the training options to ``parser`` (a parser or an argument group)."""
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch-size", type=int, default=256, help="side of the training patches (multiple of 32)")
    parser.add_argument("--patches-per-epoch", type=int, help="default: the rasters' area in patches (32..512)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warm-lr", type=float, default=TrainOptions.warm_lr,
                        help="learning rate when continuing a model (--init; simulate's later iterations); "
                        f"default {TrainOptions.warm_lr}")  # fmt: skip
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"), default=TrainOptions.lr_schedule,
                        help="cosine (default): the learning rate decays to 0 over each training run")  # fmt: skip
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="any segmentation-models-pytorch architecture")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="any segmentation-models-pytorch encoder")
    parser.add_argument("--encoder-weights", help="pretrained encoder weights from the local cache, e.g. imagenet")
    parser.add_argument("--decoder-channels", type=_channels, default=TrainOptions.decoder_channels,
                        help="the decoder's channels per stage (a U-Net: one per encoder stage; default for a U-Net "
                        "128,64,32,16,16, smp's own 256,128,64,32,16; other architectures: their own)")  # fmt: skip
    parser.add_argument("--loss", choices=LOSSES, default=TrainOptions.loss, help="default: DWCD plus partial CE")
    parser.add_argument("--amplification", type=float, default=5.0, help="DWCD weight for confident, wrong pixels")
    parser.add_argument("--expand-clicks", action=argparse.BooleanOptionalAction, default=TrainOptions.expand_clicks,
                        help="spread each click over the similar pixels of its superpixel (default: on)")  # fmt: skip
    parser.add_argument("--expansion-weight", type=float, default=TrainOptions.expansion_weight,
                        help="loss weight of a label spread from a click, a click weighing 1 (default "
                        f"{TrainOptions.expansion_weight})")  # fmt: skip
    parser.add_argument("--expansion-consensus", action=argparse.BooleanOptionalAction,
                        default=TrainOptions.expansion_consensus, help="spread a click only to the pixels "
                        "that most of five superpixel sizes put with it (fewer wrong labels near edges; default: "
                        "off)")  # fmt: skip
    parser.add_argument("--expansion-region", type=int, default=TrainOptions.expansion_region,
                        help="side in pixels of the superpixels a click spreads over (default "
                        f"{TrainOptions.expansion_region}; larger: more and less certain labels)")  # fmt: skip
    parser.add_argument("--expand-corrections", action=argparse.BooleanOptionalAction,
                        default=TrainOptions.expand_corrections, help="when continuing a model (--init), also "
                        "spread the clicks where it predicts another class than the click's (default: on; off: "
                        "those count as clicks only)")  # fmt: skip
    parser.add_argument("--correction-region", type=int, default=TrainOptions.correction_region,
                        help="when continuing a model (--init), side in pixels of the superpixels that the clicks "
                        "where it predicts another class spread over (default: --expansion-region's)")  # fmt: skip
    parser.add_argument("--context-fraction", type=float, default=TrainOptions.context_fraction,
                        help="share of the training patches drawn anywhere in the rasters; the others each hold a "
                        f"labelled pixel (default {TrainOptions.context_fraction:g})")  # fmt: skip
    parser.add_argument("--jitter", type=float, default=TrainOptions.jitter,
                        help="colour augmentation: each band of each training patch gets a random gain in "
                        "[1-J, 1+J] and offset in [-J, J] standard deviations (default 0: off)")  # fmt: skip
    parser.add_argument("--consistency", type=float, default=TrainOptions.consistency,
                        help="weight of a consistency loss on unlabelled pixels (default 0: off; try 1)")  # fmt: skip
    parser.add_argument("--distill", type=float, default=TrainOptions.distill,
                        help="when continuing a model (--init), weight of its KL from the model it continues on "
                        f"the unlabelled pixels (default {TrainOptions.distill:g}; 0: off)")  # fmt: skip
    parser.add_argument("--distill-threshold", type=float, default=TrainOptions.distill_threshold,
                        help="with --distill, only where the model continued gives a class at least this "
                        "probability (default 0: everywhere)")  # fmt: skip
    parser.add_argument("--distill-batch-stats", action=argparse.BooleanOptionalAction,
                        default=TrainOptions.distill_batch_stats, help="with --distill, the model continued "
                        "normalises each batch by its own statistics, as the model trained does (default: off, "
                        "it predicts as it maps)")  # fmt: skip
    parser.add_argument("--affinity", type=float, default=TrainOptions.affinity,
                        help="weight of an edge-aware smoothness loss on every pixel: neighbours of like colour "
                        "pay for different predictions (a local CRF loss; default 0: off)")  # fmt: skip
    parser.add_argument("--weight-average", type=float, default=TrainOptions.weight_average,
                        help="save the average of the weights over about this share of the run's last steps "
                        "(an exponential moving average; default 0: off; try 0.25)")  # fmt: skip
    parser.add_argument("--forest-prior", action=argparse.BooleanOptionalAction, default=TrainOptions.forest_prior,
                        help="also learn from a random forest's confident predictions (weak labels)")  # fmt: skip
    parser.add_argument("--forest-ensemble", action=argparse.BooleanOptionalAction,
                        default=TrainOptions.forest_ensemble, help="also fit a random forest on the clicks and "
                        "average its probabilities with the network's (default: on)")  # fmt: skip
    parser.add_argument("--forest-expansion", action=argparse.BooleanOptionalAction,
                        default=TrainOptions.forest_expansion, help="the forest also learns from the pixels each "
                        "click spreads to (weighted below the click), as the network does (default: off)")  # fmt: skip
    parser.add_argument("--prior-correction", action=argparse.BooleanOptionalAction,
                        default=TrainOptions.prior_correction, help="correct the predictions for the clicks' class "
                        "balance, from the classes' predicted shares of the rasters (default: on)")  # fmt: skip
    parser.add_argument("--superpixel-smoothing", action=argparse.BooleanOptionalAction,
                        default=TrainOptions.superpixel_smoothing, help="average each pixel's predicted "
                        "probabilities with its superpixel's, half and half (default: on)")  # fmt: skip
    parser.add_argument("--flip-views", type=int, choices=FLIP_CHOICES, default=TrainOptions.flip_views,
                        help="average the network's predictions over this many flips of each tile (default "
                        f"{TrainOptions.flip_views}; 1: off; each view is one more pass of the network)")  # fmt: skip
    parser.add_argument("--pretrain-steps", type=int, default=0, help="self-supervised warm-up steps (fresh models)")


def _channels(text: str) -> tuple[int, ...]:
    try:
        channels = tuple(int(c) for c in text.split(","))
    except ValueError:
        channels = ()
    if not channels or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive integers")
    return channels


def _positive_ints(values) -> bool:
    return isinstance(values, list | tuple) and all(isinstance(v, int) and v >= 1 for v in values) and bool(values)


def training_options(args: argparse.Namespace) -> TrainOptions:
    """Check the training options of ``args`` and return them as TrainOptions."""
    checks = [
        ("epochs", args.epochs >= 1, "at least 1"),
        ("batch_size", args.batch_size >= 1, "at least 1"),
        ("patch_size", args.patch_size >= 32 and args.patch_size % 32 == 0, "a multiple of 32 (the output stride)"),
        ("patches_per_epoch", args.patches_per_epoch is None or args.patches_per_epoch >= 1, "at least 1"),
        ("lr", args.lr > 0, "positive"),
        ("warm_lr", args.warm_lr is None or args.warm_lr > 0, "positive"),
        ("expansion_weight", 0 < args.expansion_weight <= 1, "above 0 and at most 1"),
        ("expansion_region", 2 <= args.expansion_region <= 64, "between 2 and 64 (pixels)"),
        (
            "correction_region",
            args.correction_region is None or 2 <= args.correction_region <= 64,
            "between 2 and 64 (pixels)",
        ),
        ("context_fraction", 0 <= args.context_fraction <= 1, "0 or more and at most 1"),
        ("jitter", 0 <= args.jitter < 1, "0 or more and below 1"),
        ("consistency", args.consistency >= 0, "0 or more"),
        ("distill", args.distill >= 0, "0 or more"),
        ("distill_threshold", 0 <= args.distill_threshold < 1, "0 or more and below 1"),
        ("affinity", args.affinity >= 0, "0 or more"),
        ("weight_average", 0 <= args.weight_average <= 1, "0 or more and at most 1"),
        ("pretrain_steps", args.pretrain_steps >= 0, "0 or more"),
        (
            "decoder_channels",
            args.decoder_channels is None or _positive_ints(args.decoder_channels),
            "a list of positive integers, e.g. 128,64,32,16,16",
        ),
    ]
    for name, ok, what in checks:
        if not ok:
            raise InputError(f"--{name.replace('_', '-')}: {getattr(args, name)} must be {what}", name)
    return TrainOptions(**{f.name: getattr(args, f.name) for f in fields(TrainOptions) if hasattr(args, f.name)})
