"""The learning-curve plot of a simulation: mIoU against the share of training pixels labelled, a line per strategy."""

import warnings
from pathlib import Path

from engine.atomic import atomic_file

COLORS = {"error": "#d62728", "superpixel": "#1f77b4", "entropy": "#2ca02c", "margin": "#9467bd", "random": "#7f7f7f",
          "default": "#d62728", "rf": "#2ca02c", "plain_dwcd": "#7f7f7f", "warmup": "#ff7f0e"}  # fmt: skip


def plot_learning_curve(rows: list[dict], path: Path, title: str = "", dense_miou: float | None = None) -> Path:
    """Write a PNG of mIoU (%) against labelled pixels (% of the training pixels, log scale)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=120)
    try:
        strategies = list(dict.fromkeys(r["strategy"] for r in rows if r["strategy"] != "dense"))
        for strategy in strategies:
            mine = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["iteration"])
            axes.plot(
                [r["labeled_percent"] for r in mine],
                [100 * r["miou"] for r in mine],
                marker="o",
                label=strategy,
                color=COLORS.get(strategy),
            )
        if dense_miou is not None:
            axes.axhline(100 * dense_miou, color="black", linestyle="--", linewidth=1, label="dense labels")
            axes.axhline(95 * dense_miou, color="black", linestyle=":", linewidth=1, label="95% of dense")
        if any(r["labeled_percent"] > 0 for r in rows):
            axes.set_xscale("log")
            ticker = _ticker()
            axes.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            axes.xaxis.set_minor_formatter(ticker.NullFormatter())
        axes.set_xlabel("labelled pixels (% of the training pixels)")
        axes.set_ylabel("mIoU on the validation images (%)")
        axes.set_title(title or "Label efficiency")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        figure.tight_layout()
        with atomic_file(Path(path)) as tmp:
            figure.savefig(tmp, format="png")
    finally:
        plt.close(figure)
    return Path(path)


def _ticker():
    import matplotlib.ticker

    return matplotlib.ticker


def _pyplot():
    with warnings.catch_warnings():  # a system matplotlib beside the environment's warns about Axes3D: harmless
        warnings.simplefilter("ignore")
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    return plt
