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


#: The L0 axis label of the plots whose points are dodged (:func:`_over_seeds`).
L0_AXIS_LABEL = "target L0\n(points offset sideways per architecture for legibility)"


def binned_recovery(
    firing_probabilities: npt.NDArray[Any], best_abs_cos: npt.NDArray[Any], bins: int = 24
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``feature_recovery.png``'s curve: the centres of ``bins`` log-spaced firing-probability bins and
    the mean best |cos| of the features in each, NaN where a bin holds no feature (so the plotted
    line breaks there instead of bridging the gap)."""
    p = np.asarray(firing_probabilities, dtype=np.float64)
    edges = np.geomspace(p.min(), p.max() * 1.0001, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    sums = np.bincount(which, weights=np.asarray(best_abs_cos, dtype=np.float64), minlength=bins)
    counts = np.bincount(which, minlength=bins)
    means = np.full(bins, np.nan)
    np.divide(sums, counts, out=means, where=counts > 0)
    return centres, means


def depth_groups(runs: list[EvalResult], keys: tuple[str, ...]) -> list[str]:
    """The hierarchy groups (``depth_0``, ``depth_1``, …, then ``free``) any of ``keys`` has in any of
    ``runs``' recovery metrics: the groups every panel of one figure shows (a group a panel's metric
    lacks is left empty there, marked n/a)."""
    present = {k for r in runs for k in r.recovery}
    depths = {
        k[len(key) + 1 :]
        for key in keys
        for k in present
        if k.startswith(key + "/depth_") and k[len(key) + 7 :].isdigit()
    }
    groups = sorted(depths, key=lambda g: int(g.removeprefix("depth_")))
    return groups + (["free"] if any(f"{key}/free" in present for key in keys) else [])


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

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
    for ax, metric in zip(axes, ("mcc", "f1"), strict=True):
        for architecture, (l0s, mean, std) in _over_seeds(results, metric).items():
            ax.errorbar(l0s, mean, yerr=std, fmt="o-", capsize=3, label=architecture)
    ticks = sorted({l0 for _, l0, _ in results})  # the L0s themselves, not the dodged positions
    for ax, title in zip(axes, ("MCC", "F1 (latents as feature classifiers)"), strict=True):
        ax.set(xlabel=L0_AXIS_LABEL, ylabel=title.split()[0], title=f"{title} vs L0", xticks=ticks)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()  # below the panels, where it hides no line
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6) or 1)
    fig.savefig(out / "mcc_f1_vs_l0.png", dpi=120)
    plt.close(fig)
    names.append("mcc_f1_vs_l0.png")

    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    for architecture, (l0s, mean, std) in _over_seeds(results, "explained_variance").items():
        ax.errorbar(l0s, mean, yerr=std, fmt="o-", capsize=3, label=architecture)
    ax.set(
        xlabel=L0_AXIS_LABEL,
        ylabel="explained variance (pooled)",
        title="Explained variance vs L0",
        xticks=ticks,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.savefig(out / "explained_variance_vs_l0.png", dpi=120)
    plt.close(fig)
    names.append("explained_variance_vs_l0.png")

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for architecture, points in runs.items():
        l0, result = points[len(points) // 2]
        centres, means = binned_recovery(firing_probabilities, result.feature_best_abs_cos)
        ax.plot(centres, means, "o-", ms=3, label=f"{architecture} (L0 {l0:g})")  # NaN: a gap
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

    thresholds = (0.5, 0.9)
    shown = depth_groups(
        [r for points in runs.values() for _, r in points], tuple(f"recovery/matched@{t}" for t in thresholds)
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True, sharey=True)
    for ax, threshold in zip(axes, thresholds, strict=True):
        _bars_by_depth(
            ax,
            runs,
            f"recovery/matched@{threshold}",
            ylabel="features recovered (matched latent)",
            title=f"Recovery at |cos| ≥ {threshold}",
            empty="no feature recovered at this threshold",
            groups=shown,
        )
    axes[0].legend(fontsize=8)
    fig.savefig(out / "recovery_by_depth.png", dpi=120)
    plt.close(fig)
    names.append("recovery_by_depth.png")

    panels = (
        ("absorption/gap", "Absorption gap\n(parent latent's recall, alone − with a child)"),
        ("absorption/full_rate", "Full absorption\n(parent silent, child's latent fires)"),
        ("absorption/fraction", "Absorption fraction\n(share of the parent carried by other latents)"),
    )
    shown = depth_groups([r for points in runs.values() for _, r in points], tuple(k for k, _ in panels))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for ax, (key, title) in zip(axes, panels, strict=True):
        _bars_by_depth(
            ax,
            runs,
            key,
            ylabel=key.split("/")[1].replace("_", " "),
            title=title,
            empty="no parent counted",
            groups=shown,
        )
    for ax in axes:
        ax.set_xlabel("parent depth")
    axes[0].legend(fontsize=8)
    fig.savefig(out / "absorption_by_depth.png", dpi=120)
    plt.close(fig)
    names.append("absorption_by_depth.png")
    return names


def _bars_by_depth(
    ax: Any,
    runs: dict[str, list[tuple[float, EvalResult]]],
    key: str,
    *,
    ylabel: str,
    title: str,
    empty: str,
    groups: list[str] | None = None,
) -> None:
    """Grouped bars of ``recovery[key]`` overall and per hierarchy group (``key/depth_d``, ``key/free``;
    ``groups``, default those ``key`` has), one bar per architecture at its median L0 (a group no
    architecture has is marked n/a); chance level dashed when the results carry ``baseline/key``."""
    picked = [(a, *points[len(points) // 2]) for a, points in runs.items()]
    if groups is None:
        groups = depth_groups([r for _, _, r in picked], (key,))
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
    for i in range(len(groups) + 1):
        if finite and not any(np.isfinite(vs[i]) for vs in values.values()):
            ax.text(x[i], 0.02, "n/a", ha="center", va="bottom", color="0.4", fontsize=8)
    chance = picked[0][2].recovery.get(f"baseline/{key}")
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label="random dictionary")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks(x, ["all"] + [g.replace("depth_", "depth ") for g in groups])
    ax.set_xlim(-0.5, len(groups) + 0.5)  # every group's slot, with bars or not
    ax.set(ylim=(min(0.0, *finite, 0.0) - 0.02, 1.02), ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
