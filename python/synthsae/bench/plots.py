"""PNG plots of a bench run (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from synthsae.evaluation.scoring import EvalResult


def _by_architecture(
    results: list[tuple[str, float, EvalResult]],
) -> dict[str, list[tuple[float, EvalResult]]]:
    """Per architecture, ``(L0, result)`` sorted by L0, one per L0 (the first seed's)."""
    out: dict[str, dict[float, EvalResult]] = {}
    for architecture, l0, result in results:
        out.setdefault(architecture, {}).setdefault(l0, result)
    return {a: sorted(runs.items(), key=lambda r: r[0]) for a, runs in out.items()}


def _over_seeds(
    results: list[tuple[str, float, EvalResult]], metric: str
) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Per architecture: L0s (dodged a little per architecture), and the mean and std over seeds of
    ``metric`` at each."""
    values: dict[str, dict[float, list[float]]] = {}
    for architecture, l0, result in results:
        values.setdefault(architecture, {}).setdefault(l0, []).append(float(getattr(result, metric)))
    every = sorted({l0 for _, l0, _ in results})
    span = (every[-1] - every[0]) if len(every) > 1 else 1.0
    out = {}
    for i, (architecture, by_l0) in enumerate(values.items()):
        l0s = sorted(by_l0)
        dodge = (i - (len(values) - 1) / 2) * 0.15 * span / max(len(values), 1)  # so points do not overlap
        out[architecture] = (
            [v + dodge for v in l0s],
            [float(np.mean(by_l0[v])) for v in l0s],
            [float(np.std(by_l0[v])) for v in l0s],
        )
    return out


#: Every file :func:`write_plots` may write.
PLOT_FILES = (
    "mcc_f1_vs_l0.png",
    "explained_variance_vs_l0.png",
    "feature_recovery.png",
    "recovery_by_depth.png",
    "absorption_by_depth.png",
)


def write_plots(
    out: Path, results: list[tuple[str, float, EvalResult]], firing_probabilities: npt.NDArray[np.float32]
) -> list[str]:
    """Writes ``mcc_f1_vs_l0.png``, ``explained_variance_vs_l0.png`` (means over seeds, std as error
    bars), ``feature_recovery.png`` (per-feature best |cos| vs firing probability, binned, for each
    architecture at its median L0, first seed; so are the bar plots) and
    ``recovery_by_depth.png`` (recovery at |cos| 0.5 and 0.9 by hierarchy depth) and
    ``absorption_by_depth.png`` (absorption gap, full absorption rate and absorption fraction by parent
    depth); returns the names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = _by_architecture(results)
    names = []

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, metric in zip(axes, ("mcc", "f1"), strict=True):
        for architecture, (l0s, mean, std) in _over_seeds(results, metric).items():
            ax.errorbar(l0s, mean, yerr=std, fmt="o-", capsize=3, label=architecture)
    ticks = sorted({l0 for _, l0, _ in results})  # the L0s themselves, not the dodged positions
    for ax, title in zip(axes, ("MCC", "F1 (latents as feature classifiers)"), strict=True):
        ax.set(xlabel="target L0", ylabel=title.split()[0], title=f"{title} vs L0", xticks=ticks)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.savefig(out / "mcc_f1_vs_l0.png", dpi=120)
    plt.close(fig)
    names.append("mcc_f1_vs_l0.png")

    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    for architecture, (l0s, mean, std) in _over_seeds(results, "explained_variance").items():
        ax.errorbar(l0s, mean, yerr=std, fmt="o-", capsize=3, label=architecture)
    ax.set(
        xlabel="target L0",
        ylabel="explained variance (pooled)",
        title="Explained variance vs L0",
        xticks=ticks,
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(out / "explained_variance_vs_l0.png", dpi=120)
    plt.close(fig)
    names.append("explained_variance_vs_l0.png")

    p = np.asarray(firing_probabilities, dtype=np.float64)
    edges = np.geomspace(p.min(), p.max() * 1.0001, 25)
    which = np.clip(np.digitize(p, edges) - 1, 0, len(edges) - 2)
    centres = np.sqrt(edges[:-1] * edges[1:])
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for architecture, points in runs.items():
        l0, result = points[len(points) // 2]
        best = result.feature_best_abs_cos.astype(np.float64)
        sums = np.bincount(which, weights=best, minlength=len(centres))
        counts = np.bincount(which, minlength=len(centres))
        keep = counts > 0
        ax.plot(centres[keep], sums[keep] / counts[keep], "o-", ms=3, label=f"{architecture} (L0 {l0:g})")
    ax.set(
        xscale="log",
        ylim=(0, 1.02),
        xlabel="feature firing probability",
        ylabel="best |cos| over latents (bin mean)",
        title="Per-feature recovery",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(out / "feature_recovery.png", dpi=120)
    plt.close(fig)
    names.append("feature_recovery.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True, sharey=True)
    for ax, threshold in zip(axes, (0.5, 0.9), strict=True):
        _bars_by_depth(
            ax,
            runs,
            f"recovery/matched@{threshold}",
            ylabel="features recovered (matched latent)",
            title=f"Recovery at |cos| ≥ {threshold}",
            empty="no feature recovered at this threshold",
        )
    axes[0].legend(fontsize=8)
    fig.savefig(out / "recovery_by_depth.png", dpi=120)
    plt.close(fig)
    names.append("recovery_by_depth.png")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for ax, (key, title) in zip(
        axes,
        (
            ("absorption/gap", "Absorption gap\n(parent latent's recall, alone − with a child)"),
            ("absorption/full_rate", "Full absorption\n(parent silent, child's latent fires)"),
            ("absorption/fraction", "Absorption fraction\n(share of the parent carried by other latents)"),
        ),
        strict=True,
    ):
        _bars_by_depth(
            ax, runs, key, ylabel=key.split("/")[1].replace("_", " "), title=title, empty="no parent counted"
        )
    for ax in axes:
        ax.set_xlabel("parent depth")
    axes[0].legend(fontsize=8)
    fig.savefig(out / "absorption_by_depth.png", dpi=120)
    plt.close(fig)
    names.append("absorption_by_depth.png")
    return names


def _bars_by_depth(
    ax: Any, runs: dict[str, list[tuple[float, EvalResult]]], key: str, *, ylabel: str, title: str, empty: str
) -> None:
    """Grouped bars of ``recovery[key]`` overall and per hierarchy depth (``key/depth_d``, ``key/free``),
    one bar per architecture at its median L0 (missing groups left empty); chance level dashed when the
    results carry ``baseline/key``."""
    picked = [(a, *points[len(points) // 2]) for a, points in runs.items()]
    present = {k for _, _, r in picked for k in r.recovery}
    groups = sorted(k[len(key) + 1 :] for k in present if k.startswith(key + "/depth_"))
    groups += ["free"] if f"{key}/free" in present else []
    x = np.arange(len(groups) + 1)
    width = 0.8 / max(len(picked), 1)
    values = {
        a: [r.recovery.get(key, np.nan)] + [r.recovery.get(f"{key}/{g}", np.nan) for g in groups]
        for a, _, r in picked
    }
    for i, (architecture, l0, _) in enumerate(picked):
        offset = (i - (len(picked) - 1) / 2) * width
        ax.bar(x + offset, values[architecture], width, label=f"{architecture} (L0 {l0:g})")
    finite = [v for vs in values.values() for v in vs if np.isfinite(v)]
    if not any(finite):
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
    chance = picked[0][2].recovery.get(f"baseline/{key}")
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label="random dictionary")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks(x, ["all"] + [g.replace("depth_", "depth ") for g in groups])
    ax.set(ylim=(min(0.0, *finite, 0.0) - 0.02, 1.02), ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
