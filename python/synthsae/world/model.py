"""``World``: a SynthSAEBench world — ground-truth features, firing model, hierarchy — and its sampler.

Construction follows SAELens's ``SyntheticModel`` step for step (same seeds, same torch calls), so
a world built on CPU equals SAELens's CPU build. Worlds are saved and loaded in SAELens's directory
layout (``synthetic_model_config.json``, ``synthetic_model.safetensors``, ``hierarchy.json``; see
``synthsae.world.io``). Named worlds are in ``synthsae.presets``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from synthsae import _core
from synthsae._validate import as_bool, as_int, as_num_threads, check_memory
from synthsae.errors import ConfigError, ConfigTypeError
from synthsae.evaluation.assignment import mean_max_abs_cos
from synthsae.world.config import OrthogonalizationConfig, WorldConfig, generate_magnitudes
from synthsae.world.correlation import low_rank_correlation, low_rank_from_dense
from synthsae.world.hierarchy import Hierarchy, compensate, generate_hierarchy
from synthsae.world.io import CONFIG_FILE, HIERARCHY_FILE, WEIGHTS_FILE, read_world_files, save_world
from synthsae.world.sampling import sample_rows
from synthsae.world.sparse import SparseBatch

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "HIERARCHY_FILE",
    "ORTHOGONALIZATION_METHODS",
    "WEIGHTS_FILE",
    "World",
    "csr_tensors",
    "firing_thresholds",
    "orthogonality_gradient",
    "orthogonality_objective",
    "orthogonalize",
]

_FINGERPRINT_TENSORS = (
    "feature_vectors",
    "bias",
    "firing_probabilities",
    "mean_magnitudes",
    "std_magnitudes",
    "correlation_factor",
    "correlation_diag",
)


@contextmanager
def _temporary_seed(seed: int | None, device: Any) -> Iterator[None]:
    """Like SAELens: seed torch's global RNG for the build, restore it afterwards."""
    import torch

    if seed is None:
        yield
        return
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _sub(seed: int | None, k: int) -> int | None:
    return None if seed is None else seed + k


#: How :func:`orthogonalize` evaluates the objective's gradient (``World(..., orthogonalization=)``).
ORTHOGONALIZATION_METHODS = ("gram", "chunked")


def orthogonalize(
    vectors: torch.Tensor,
    config: OrthogonalizationConfig,
    show_progress: bool = True,
    method: str = "gram",
) -> torch.Tensor:
    """Adam on SAELens's objective ``L(E) = Σ_{i≠j} (e_i·e_j)² + N Σ_i (|e_i|² - 1)²`` from the unit rows
    of ``vectors [N, D]``; returns unit rows ``[N, D]``.

    ``method="gram"`` (default) uses ``L = ‖EᵀE‖_F² - Σ_i |e_i|⁴ + N Σ_i (|e_i|² - 1)²`` and its gradient
    ``4·E(EᵀE) - 4·diag(|e_i|²)·E + 4N·diag(|e_i|² - 1)·E``: ``O(N·D²)`` per step through the ``[D, D]``
    Gram matrix. ``"chunked"`` is SAELens's ``orthogonalize_embeddings`` (autograd over ``[chunk_size,
    N]`` blocks of ``EEᵀ``, ``O(N²·D)`` per step), for exact replication. Same objective, same Adam
    trajectory up to float rounding."""
    import torch
    from tqdm.auto import tqdm

    if method not in ORTHOGONALIZATION_METHODS:
        raise ConfigError(f"orthogonalization must be one of {ORTHOGONALIZATION_METHODS}, got {method!r}")

    def unit(x: torch.Tensor) -> torch.Tensor:
        return x / x.norm(dim=1, keepdim=True).clamp(min=1e-8)

    e = unit(vectors.detach()).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([e], lr=config.lr)
    for _ in tqdm(range(config.num_steps), desc="orthogonalizing features", disable=not show_progress):
        optimizer.zero_grad()
        if method == "gram":
            e.grad = orthogonality_gradient(e.detach())
        else:
            for chunk_loss in _chunked_losses(e, config.chunk_size):
                chunk_loss.backward()
        optimizer.step()
    return unit(e.detach())


def orthogonality_objective(e: torch.Tensor) -> torch.Tensor:
    """``L(E) = ‖EᵀE‖_F² - Σ_i |e_i|⁴ + N Σ_i (|e_i|² - 1)²`` of ``e [N, D]`` (scalar; the Gram form)."""
    sq = e.pow(2).sum(dim=1)
    return (e.T @ e).pow(2).sum() - sq.pow(2).sum() + e.shape[0] * (sq - 1).pow(2).sum()


def orthogonality_gradient(e: torch.Tensor) -> torch.Tensor:
    """``∇L = 4·E(EᵀE) - 4·diag(|e_i|²)·E + 4N·diag(|e_i|² - 1)·E`` ``[N, D]`` of ``e [N, D]``."""
    sq = e.pow(2).sum(dim=1, keepdim=True)
    return 4 * (e @ (e.T @ e)) + 4 * ((e.shape[0] - 1) * sq - e.shape[0]) * e


def _chunked_losses(e: torch.Tensor, chunk_size: int) -> Iterator[torch.Tensor]:
    """SAELens's per-chunk parts of ``L(E)``, computed as SAELens does (bit for bit): for rows ``[lo, lo +
    chunk)``, the squares of their dot products with every other row (a masked sum), plus
    ``N·Σ(diag - 1)²``."""
    import torch

    n = e.shape[0]
    for lo in range(0, n, chunk_size):
        chunk = e[lo : lo + chunk_size]
        dots = chunk @ e.T
        own = torch.arange(chunk.shape[0], device=e.device)
        off_diagonal = torch.ones_like(dots, dtype=torch.bool)
        off_diagonal[own, lo + own] = False
        diag = dots[own, lo + own]
        yield dots[off_diagonal].pow(2).sum() + n * (diag - 1).pow(2).sum()


def _dictionary(cfg: WorldConfig, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """SAELens's ``FeatureDictionary``: unit random rows ``[N, D]``, then a random bias of norm ``bias``."""
    import torch

    generator = None
    if cfg.seed is not None:
        generator = torch.Generator(device=device).manual_seed(cfg.seed)
    w = torch.randn(cfg.num_features, cfg.hidden_dim, device=device, generator=generator)
    w.div_(w.norm(dim=1, keepdim=True).clamp(min=1e-8))  # in place: the same bits, half the peak memory
    if cfg.bias:
        norm = 1.0 if cfg.bias is True else float(cfg.bias)
        b = torch.randn(cfg.hidden_dim, device=device, generator=generator)
        b = b / b.norm().clamp(min=1e-8) * norm
    else:
        b = torch.zeros(cfg.hidden_dim, device=device)
    return w, b


def _check_world_memory(config: WorldConfig, *, on_host: bool, correlated: bool) -> None:
    """Refuses, before anything is allocated, a world whose float32 feature vectors ``[N, D]`` (five
    copies while orthogonalized ``on_host``: the drawn ones, the optimised ones, their gradient and
    Adam's two moments) and per-feature arrays (firing probabilities in float32 and float64, two
    magnitudes, and when ``correlated`` the copula's ``[N, rank]`` factor and diagonal) exceed memory:
    ValueError naming the larger of ``WorldConfig.num_features`` and ``WorldConfig.hidden_dim``."""
    n, d = config.num_features, config.hidden_dim
    ortho = config.orthogonalization
    copies = 5 if on_host and ortho is not None and ortho.num_steps > 0 else 1
    per_feature = 4 * copies * d + 4 * 3 + 8
    if correlated and config.correlation is not None:
        per_feature += 4 * (config.correlation.rank + 1)
    check_memory(
        "WorldConfig.hidden_dim" if d > n else "WorldConfig.num_features",
        n * per_feature + 4 * d,
        f"a world of {n:,} features in {d:,} dimensions (its float32 feature vectors"
        + (", orthogonalized," if copies > 1 else "")
        + " and per-feature arrays)",
    )


class World:
    """A synthetic world: N ground-truth features in D dims, their firing model and hierarchy.

    Attributes:
        config: the WorldConfig.
        feature_vectors: torch float32 ``[N, D]`` (unit rows).
        bias: torch float32 ``[D]``.
        firing_probabilities: torch float32 ``[N]`` (after hierarchy compensation).
        mean_magnitudes, std_magnitudes: torch float32 ``[N]``.
        correlation_factor, correlation_diag: ``[N, r]`` and ``[N]`` torch tensors, or None.
        hierarchy: Hierarchy or None.
        source: how to get this world again: ``{"config", "orthogonalization"}`` when built on the
            CPU from a config, ``{"directory"}`` when loaded; None otherwise (a dense
            ``correlation_matrix``, another device). ``generate`` records it in its manifest.
    """

    source: dict[str, Any] | None

    def __init__(
        self,
        config: WorldConfig,
        *,
        correlation_matrix: Any = None,
        device: Any = "cpu",
        orthogonalization: str = "gram",
        show_progress: bool = True,
    ) -> None:
        """Builds the world from ``config``. ``correlation_matrix`` (dense ``[N, N]``, small N) replaces
        the config's correlation with that exact copula (stored in factor form, as SAELens loads it).
        ``orthogonalization`` says how ``config.orthogonalization`` is run (:func:`orthogonalize`):
        ``"gram"`` (fast, the default) or ``"chunked"`` (SAELens's computation, for exact replication)."""
        import torch

        if not isinstance(config, WorldConfig):
            raise ConfigTypeError(f"config must be a WorldConfig, got {type(config).__name__}")
        show_progress = as_bool("show_progress", show_progress)
        if orthogonalization not in ORTHOGONALIZATION_METHODS:
            raise ConfigError(
                f"orthogonalization must be one of {ORTHOGONALIZATION_METHODS}, got {orthogonalization!r}"
            )
        on_host = device is None or str(device).split(":")[0] == "cpu"
        _check_world_memory(config, on_host=on_host, correlated=correlation_matrix is None)
        n, seed = config.num_features, config.seed
        with _temporary_seed(seed, device):
            hierarchy = None
            if config.hierarchy is not None:
                hierarchy = generate_hierarchy(n, config.hierarchy, _sub(seed, 3))
            correlation = None
            if correlation_matrix is not None:
                correlation = low_rank_from_dense(correlation_matrix)
                if correlation[0].shape[0] != n:
                    raise ConfigError(
                        f"correlation_matrix must be [{n}, {n}], got {tuple(correlation[0].shape)}"
                    )
            elif config.correlation is not None:
                dtype = getattr(torch, config.dtype)
                correlation = low_rank_correlation(n, config.correlation, _sub(seed, 4), device, dtype)
            vectors, bias = _dictionary(config, device)
            if config.orthogonalization is not None:
                vectors = orthogonalize(vectors, config.orthogonalization, show_progress, orthogonalization)
            p = config.firing_probability.generate(n, seed)
            if (
                hierarchy is not None
                and config.hierarchy is not None
                and config.hierarchy.compensate_probabilities
            ):
                p, clamped = compensate(p, hierarchy)
                if clamped:
                    logger.warning("hierarchy compensation clamped %d firing probabilities to 1", clamped)
        self._init(config, vectors, bias, torch.from_numpy(p), hierarchy, correlation)
        if correlation_matrix is None and torch.device(device).type == "cpu":
            # Enough to build this world again (bit for bit: same config, method and device).
            self.source = {"config": config.to_dict(), "orthogonalization": orthogonalization}

    def _init(
        self,
        config: WorldConfig,
        vectors: torch.Tensor,
        bias: torch.Tensor,
        p: torch.Tensor,
        hierarchy: Hierarchy | None,
        correlation: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> None:
        import torch

        n, seed = config.num_features, config.seed
        self.config = config
        self.feature_vectors = vectors.detach().to("cpu", torch.float32).contiguous()
        self.bias = bias.detach().to("cpu", torch.float32).contiguous()
        self.firing_probabilities = p.detach().to("cpu", torch.float32).contiguous()
        self.hierarchy = hierarchy
        self.correlation_factor = (
            None if correlation is None else correlation[0].detach().cpu().float().contiguous()
        )
        self.correlation_diag = (
            None if correlation is None else correlation[1].detach().cpu().float().contiguous()
        )
        self.std_magnitudes = torch.from_numpy(
            generate_magnitudes(n, config.std_firing_magnitudes, _sub(seed, 1))
        )
        self.mean_magnitudes = torch.from_numpy(
            generate_magnitudes(n, config.mean_firing_magnitudes, _sub(seed, 2))
        )
        self._on_device: dict[tuple[str, Any], tuple[torch.Tensor, torch.Tensor]] = {}
        self._fingerprint: str | None = None
        self.source = None
        self._sampler = self._make_sampler()

    def _make_sampler(self) -> _core.WorldSampler:
        n = self.num_features
        p = self.firing_probabilities.numpy().astype(np.float64)
        copula: tuple[Any, Any, Any] = (None, None, None)
        if self.correlation_factor is not None and self.correlation_diag is not None:
            t = firing_thresholds(self.firing_probabilities.numpy())
            copula = (self.correlation_factor.numpy(), self.correlation_diag.numpy(), t)
        groups = (self.hierarchy or Hierarchy([])).groups(n)
        return _core.WorldSampler(
            p,
            self.mean_magnitudes.numpy(),
            self.std_magnitudes.numpy(),
            *copula,
            groups.gate,
            groups.exclusive,
            groups.rescale,
            groups.ptr,
            groups.members,
        )

    @property
    def num_features(self) -> int:
        return self.config.num_features

    @property
    def hidden_dim(self) -> int:
        return self.config.hidden_dim

    def __repr__(self) -> str:
        parts = [f"N={self.num_features}", f"D={self.hidden_dim}"]
        if self.hierarchy is not None:
            parts.append(f"hierarchy of {len(self.hierarchy.roots)} trees")
        if self.correlation_factor is not None:
            parts.append(f"rank-{self.correlation_factor.shape[1]} copula")
        return f"World({', '.join(parts)})"

    # ------------------------------------------------------------------ sampling

    def sample_features(
        self, n: int, *, seed: int, start: int = 0, num_threads: int | None = None
    ) -> SparseBatch:
        """Final feature activations (after the hierarchy) of rows ``start .. start + n``; CSR ``[n, N]``.

        Row ``r`` is a pure function of ``(seed, r)``: bit-identical for any split and thread count.
        """
        return sample_rows(self._sampler, n, seed=seed, start=start, num_threads=num_threads)

    def sample(
        self,
        n: int,
        *,
        seed: int,
        start: int = 0,
        device: Any = None,
        dtype: Any = None,
        return_features: bool = False,
        num_threads: int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, SparseBatch]:
        """Hidden activations ``h = a·W + b`` ``[n, D]`` on ``device`` (float32 unless ``dtype``),
        computed from the sparse features (never a dense ``[n, N]``); with ``return_features=True``
        also the SparseBatch."""
        return_features = as_bool("return_features", return_features)
        features = self.sample_features(n, seed=seed, start=start, num_threads=num_threads)
        hidden = self.hidden_from_features(features, device=device, dtype=dtype, num_threads=num_threads)
        return (hidden, features) if return_features else hidden

    def hidden_from_features(
        self,
        features: SparseBatch,
        *,
        device: Any = None,
        dtype: Any = None,
        num_threads: int | None = None,
    ) -> torch.Tensor:
        """``h = a·W + b`` ``[n, D]`` for a SparseBatch of this world: a parallel Rust sum over each
        row's active features (on ``num_threads`` threads) for float32 on CPU, an embedding-bag sum
        otherwise."""
        import torch

        if not isinstance(features, SparseBatch) or features.shape[1] != self.num_features:
            raise ConfigError(f"features must be a SparseBatch with {self.num_features} columns")
        dtype = dtype or torch.float32
        key = (str(torch.device(device or "cpu")), dtype)
        if key == ("cpu", torch.float32):
            h = _core.hidden_from_csr(
                np.ascontiguousarray(features.indptr, dtype=np.int64),
                np.ascontiguousarray(features.indices, dtype=np.int32),
                np.ascontiguousarray(features.values, dtype=np.float32),
                self.feature_vectors.numpy(),
                self.bias.numpy(),
                as_num_threads(num_threads),
            )
            return torch.from_numpy(h)
        return self.hidden_from_csr_tensors(*csr_tensors(features), device=key[0], dtype=dtype)

    def hidden_from_csr_tensors(
        self,
        indptr: torch.Tensor,
        indices: torch.Tensor,
        values: torch.Tensor,
        *,
        device: Any,
        dtype: Any,
    ) -> torch.Tensor:
        """``h = a·W + b`` ``[n, D]`` on ``device`` by an embedding-bag sum from CPU CSR tensors
        (int64 ``indptr``/``indices``, float32 ``values``; copied without blocking when pinned)."""
        import torch

        key = (str(torch.device(device)), dtype)
        if key not in self._on_device:
            self._on_device[key] = (
                self.feature_vectors.to(key[0], dtype),
                self.bias.to(key[0], dtype),
            )
        w, b = self._on_device[key]
        h = torch.nn.functional.embedding_bag(
            indices.to(w.device, non_blocking=True),
            w,
            indptr.to(w.device, non_blocking=True),
            mode="sum",
            per_sample_weights=values.to(w.device, non_blocking=True).to(dtype),
            include_last_offset=True,
        )
        return h + b

    def fingerprint(self) -> str:
        """Hex sha256 of everything that determines this world's samples and hidden activations: the
        config, feature vectors, bias, firing probabilities, magnitudes, correlation and hierarchy.
        Equal for a world and its saved-and-loaded copy."""
        if self._fingerprint is None:
            digest = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode())
            for name in _FINGERPRINT_TENSORS:
                tensor = getattr(self, name)
                header = "none" if tensor is None else f"{tensor.dtype}{tuple(tensor.shape)}"
                digest.update(f"|{name}:{header}|".encode())
                if tensor is not None:
                    digest.update(tensor.contiguous().numpy().tobytes())
            tree = None if self.hierarchy is None else self.hierarchy.to_dict()
            digest.update(json.dumps(tree, sort_keys=True).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Writes SAELens's layout into directory ``path``; refuses a non-empty directory unless
        ``overwrite`` (FileExistsError). Each file is written to a temporary name and renamed into place."""
        save_world(self, Path(path), overwrite=as_bool("overwrite", overwrite))

    @classmethod
    def from_pretrained(
        cls,
        source: str,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        force_download: bool = False,
    ) -> World:
        """The world saved on the Hugging Face Hub at ``source`` (``"owner/name"`` or
        ``"owner/name:path/in/repo"``, as SAELens's ``load_from_source``), e.g.
        ``World.from_pretrained("decoderesearch/synth-sae-bench-16k-v2")``; through ``huggingface_hub``
        and its cache (``HF_HUB_OFFLINE=1`` reads the cache only). See :mod:`synthsae.world.hub`."""
        from synthsae.world.hub import download

        folder = download(
            source,
            revision=revision,
            cache_dir=None if cache_dir is None else Path(cache_dir),
            force_download=as_bool("force_download", force_download),
        )
        return cls.load(folder)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> World:
        """Reads a world directory written by synthsae or SAELens.

        As in SAELens, magnitudes are regenerated from the config, and a hierarchy or correlation
        that the config names but the files lack is regenerated from the seed (with a warning).
        """
        import torch

        path = Path(path)
        config, tensors, hierarchy = read_world_files(path)
        n = config.num_features
        if hierarchy is None and config.hierarchy is not None:
            warnings.warn(
                f"{path} has no {HIERARCHY_FILE}: regenerating the hierarchy from the config", stacklevel=2
            )
            hierarchy = generate_hierarchy(n, config.hierarchy, _sub(config.seed, 3))
        correlation = None
        if "correlation_factor" in tensors:
            correlation = (tensors["correlation_factor"], tensors["correlation_diag"])
        elif config.correlation is not None:
            warnings.warn(
                f"{path} has no correlation tensors: regenerating them from the config", stacklevel=2
            )
            correlation = low_rank_correlation(
                n, config.correlation, _sub(config.seed, 4), "cpu", torch.float32
            )
        world = cls.__new__(cls)
        p = tensors["firing_probabilities"].float()
        world._init(config, tensors["feature_vectors"], tensors["bias"], p, hierarchy, correlation)
        world.source = {"directory": str(path.absolute())}
        return world

    # ------------------------------------------------------------------ statistics

    def stats(
        self, num_samples: int = 20_000, seed: int = 0, *, first_features: tuple[int, ...] | list[int] = ()
    ) -> dict[str, Any]:
        """World statistics: L0 and per-depth firing rates from ``num_samples`` rows (with standard
        errors), RMS copula correlation (exact, O(N r²)) and mean max |cos| between features.

        Keys: ``num_samples``; ``true_l0`` (mean active features per row) and ``true_l0_stderr``;
        ``firing_rates``, per hierarchy depth (``free``: features in no tree; ``depth_d``): ``features``
        (how many), ``mean_rate`` (measured fraction of rows where one fires) and ``mean_probability``
        (the mean firing-probability parameter: for a feature under a parent, the probability that
        it fires when its parent does); ``rms_correlation`` (off-diagonal RMS of the copula's
        correlation matrix, when the world has one); ``mean_max_abs_cos`` (mean over features of the
        largest |cos| with another feature). With ``first_features``, ``true_l0_first`` maps each
        ``n`` (as a string) to the mean number of active features among the first ``n`` per row (in
        index order, the order of the base firing probabilities; bench's target L0s are set from the
        L0 of its SAE width's first features)."""

        num_samples = as_int("num_samples", num_samples, minimum=1)
        prefixes = [as_int("first_features", n, minimum=1) for n in first_features]
        batch = self.sample_features(num_samples, seed=seed)
        l0 = np.diff(batch.indptr)
        counts = np.bincount(batch.indices, minlength=self.num_features) / num_samples
        depth = (self.hierarchy or Hierarchy([])).groups(self.num_features).depth
        rates = {}
        for level in sorted(set(depth.tolist())):
            key = "free" if level < 0 else f"depth_{level}"
            mask = depth == level
            rates[key] = {
                "features": int(mask.sum()),
                "mean_rate": float(counts[mask].mean()),
                "mean_probability": float(self.firing_probabilities.numpy()[mask].mean()),
            }
        out: dict[str, Any] = {
            "num_samples": num_samples,
            "true_l0": float(l0.mean()),
            "true_l0_stderr": float(l0.std() / math.sqrt(num_samples)),
            "firing_rates": rates,
        }
        if prefixes:
            out["true_l0_first"] = {str(n): float(counts[:n].sum()) for n in prefixes}
        if self.correlation_factor is not None:
            f = self.correlation_factor.double()
            n = f.shape[0]
            sq = (f * f).sum(1)
            off = float((f.T @ f).pow(2).sum() - sq.pow(2).sum())
            out["rms_correlation"] = math.sqrt(max(off, 0.0) / (n * (n - 1))) if n > 1 else 0.0
        out["mean_max_abs_cos"] = mean_max_abs_cos(self.feature_vectors)
        return out


def csr_tensors(features: SparseBatch, pin: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(indptr, indices, values)`` of a SparseBatch as CPU torch tensors (int64, int64, float32),
    in pinned memory with ``pin``."""
    import torch

    tensors = (
        torch.from_numpy(np.ascontiguousarray(features.indptr, dtype=np.int64)),
        torch.from_numpy(features.indices.astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(features.values, dtype=np.float32)),
    )
    return tuple(t.pin_memory() for t in tensors) if pin else tensors  # type: ignore[return-value]


def firing_thresholds(p: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """SAELens's copula thresholds ``sqrt(2)·erfinv(1 - 2p)`` (float32)."""
    import torch

    return (math.sqrt(2) * torch.erfinv(1 - 2 * torch.as_tensor(p, dtype=torch.float32))).numpy()
