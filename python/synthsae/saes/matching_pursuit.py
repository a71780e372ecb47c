"""Matching-pursuit SAE (tied: ``W_enc`` is the property ``W_decᵀ`` and there is no ``b_enc``).

Greedy matching pursuit on ``r = x - b_dec`` for ``k`` iterations: ``l = argmax_l relu(r·W_dec_l)``,
``c = relu(r·W_dec_l)``, ``z_l += c``, ``r -= c·W_dec_l`` (positive inner products only; a latent may be
picked again and accumulates). Stops early per row when ``‖r‖ < residual_threshold`` (if > 0) or, with
``stop_on_duplicate_support``, after an iteration that leaves the support unchanged. Defaults are the
sweep's (``max_iterations = k``, ``residual_threshold = 0``, ``stop_on_duplicate_support = False``;
SAELens's own defaults are ``d_in``, 1e-2 and True). Loss = MSE, backpropagated through all iterations.
How the picks are found (certified picks in the Rust core on the CPU, scores kept up to date through
the Gram matrix ``W_dec W_decᵀ``, or recomputed) is chosen per call (see :func:`matching_pursuit`).
Like SAELens the decoder is not renormalised unless ``normalize_decoder=True``, and its rows start at unit
norm (SAELens forces ``decoder_init_norm = 1``).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar, Literal, Self

import torch

from synthsae import _core
from synthsae._validate import as_bool, as_int, as_nonnegative
from synthsae.errors import ConfigError
from synthsae.saes.base import SAE, TrainOutput, mse, round_l0

# An elementwise score update (index_select of a Gram row, multiply, subtract) costs about as much as this
# many multiply-adds of a dense matmul: measured on CPU (one thread: ~45 multiply-adds/ns in a float32 GEMM
# against ~2-3 updated scores/ns); on a GPU the ratio of matmul throughput to memory bandwidth is of the
# same order or higher, and the choice below moves little with it (it enters as 1 - _UPDATE_COST / d_in).
_UPDATE_COST = 16


Method = Literal["auto", "certified", "gram", "recomputed"]
METHODS: tuple[str, ...] = ("auto", "certified", "gram", "recomputed")


def use_gram(batch: int, d_in: int, d_sae: int, max_iterations: int) -> bool:
    """Whether :func:`matching_pursuit` keeps its scores up to date through a Gram matrix (``method=
    "auto"``: the certified or the Gram form) rather than recomputing them.

    Both forms compute the first scores ``r·W_decᵀ`` (``batch·d_in·d_sae`` multiply-adds). The recomputed
    form then repeats that product at each of the other ``max_iterations - 1`` iterations; the Gram form
    instead builds ``G = W_dec W_decᵀ`` once (``d_sae²·d_in``) and updates ``batch·d_sae`` scores per
    iteration (weighted by ``_UPDATE_COST`` multiply-adds each). The Gram form is chosen when it is the
    cheaper: ``d_sae·d_in + _UPDATE_COST·(k - 1)·batch < (k - 1)·batch·d_in`` with ``k = max_iterations``,
    i.e. roughly when ``d_sae < (k - 1)·batch``. A huge dictionary with a small batch (``d_sae`` above
    ``k·batch``) or a single iteration keeps the recomputed form. Rows stopping early (``residual_threshold``,
    ``stop_on_duplicate_support``) are not foreseen: the rule assumes all ``k`` iterations run."""
    steps = max_iterations - 1
    return d_sae * d_in + _UPDATE_COST * steps * batch < steps * batch * d_in


def gram_score_tolerance(residual: torch.Tensor, W_dec: torch.Tensor, updates: int) -> torch.Tensor:
    """Per row, the bound ``4·(updates + 1)·eps·‖r₀‖·max(1, max|G|)`` on how far a Gram-updated score
    may be from the recomputed ``r·W_decᵀ`` after ``updates`` updates (``[b]``; see
    :func:`matching_pursuit`). ``max|G| = max_l ‖W_dec_l‖²`` (the Gram matrix's largest entry is on its
    diagonal); ``eps`` is the machine epsilon of the score dtype (float32 for half-precision inputs)."""
    dtype = _score_dtype(residual.dtype)
    with torch.no_grad():
        eps = torch.finfo(dtype).eps
        max_gram = float(W_dec.detach().to(dtype).square().sum(dim=-1).max())
        norms = residual.detach().to(dtype).norm(dim=-1)
        return 4 * (updates + 1) * eps * norms * max(1.0, max_gram)


def _score_dtype(dtype: torch.dtype) -> torch.dtype:
    """Scores are kept in at least float32 (the Gram form's updates accumulate their rounding)."""
    return torch.promote_types(dtype, torch.float32)


def matching_pursuit(
    residual: torch.Tensor,
    W_dec: torch.Tensor,
    max_iterations: int,
    *,
    residual_threshold: float = 0.0,
    stop_on_duplicate_support: bool = False,
    method: Method = "auto",
) -> torch.Tensor:
    """Greedy (positive) matching pursuit of centred inputs ``residual [b, d_in]`` over the rows of
    ``W_dec [d_sae, d_in]``; returns the coefficients ``[b, d_sae]`` (differentiable in both inputs).

    Each iteration picks ``argmax_l relu(r·W_dec_l)`` (the lowest index among exact ties), adds
    ``c = relu(r·W_dec_l)`` to that latent and sets ``r ← r - c·W_dec_l``. A row stops when
    ``‖r‖ < residual_threshold`` (if the threshold is > 0) or, with ``stop_on_duplicate_support``, when
    an iteration leaves its support unchanged (both tested on the differentiable residual).

    The scores ``s = r·W_decᵀ`` only choose the latent (no gradient flows through them). ``method``
    picks how they are found:

    * ``"certified"`` (CPU, float32, no stopping rule): the Rust core keeps estimates of the scores up
      to date through a Gram matrix, with a rigorous bound on each estimate's error, and computes
      exact float32 scores ``dot(r, W_dec_l)`` for the best estimate and every latent whose estimate
      plus bound reaches it. The picks are those of computing every score exactly at every iteration,
      whatever Gram matrix is used (``W_dec W_decᵀ`` from float32 products, stored in float32 or
      rounded to bfloat16); they do not depend on the thread count.
    * ``"gram"``: ``s`` is computed once and, with ``G = W_dec W_decᵀ`` ``[d_sae, d_sae]``, updated after
      each iteration as ``s ← s - c·G_l`` (the exact score change of ``r ← r - c·W_dec_l``); cost
      ``d_sae²·d_in`` once plus ``b·d_sae`` per iteration, and ``d_sae²`` memory for ``G``.
    * ``"recomputed"``: ``s = r·W_decᵀ`` is recomputed from the residual at every iteration; cost
      ``b·d_in·d_sae`` per iteration.
    * ``"auto"`` (default): when a Gram matrix pays (:func:`use_gram`, roughly
      ``d_sae < (max_iterations - 1)·b``), ``"certified"`` where it applies and ``"gram"`` elsewhere;
      otherwise ``"recomputed"``.

    In ``"gram"`` and ``"recomputed"`` the coefficients, the residual and everything differentiable are
    computed the same way, so for the same selected latents their outputs and all gradients are
    bit-identical. ``"certified"`` computes them in the core too (float32, one fixed summation order,
    gradients by its own backward pass, deterministic for any thread count): equal to the others' to
    float32 rounding. The forms can select differently only through rounding. The certified picks equal
    the recomputed form's except where two scores are within the rounding of two float32 dot products
    summed in different orders. After ``j`` updates a ``"gram"`` score differs from the recomputed one
    by at most ``δ_j = 4·(j + 1)·eps·‖r₀‖·max(1, max|G|)`` (``eps`` the score dtype's machine epsilon,
    ``‖r₀‖`` the row's initial residual norm, ``max|G| = max_l ‖W_dec_l‖²``;
    :func:`gram_score_tolerance` computes it). This first-order bound counts a few roundings per update
    (the product ``c·G_l`` and its subtraction, ``G``'s own entries, the rounding of the stored residual
    that the recomputed form starts from) and takes a dot product's rounding as a few ``eps`` of its
    norms, as blocked BLAS sums give in practice (the strict worst case grows with ``d_in``); measured
    in float32 on random unit-norm rows, the difference stays under ``3·eps·‖r₀‖`` over 25 updates, well
    inside ``δ_j``. So those forms pick different latents only where the two best recomputed scores are
    within ``2·δ_j`` of each other, a near-tie that rounding decides either way; exact ties go to the
    lowest index in every form. Half-precision scores (under autocast) are kept in float32, so there the
    Gram form's selections are, if anything, closer to float32 ones than the recomputed form's.
    """
    index, coef, _ = pursue(
        residual,
        W_dec,
        max_iterations,
        residual_threshold=residual_threshold,
        stop_on_duplicate_support=stop_on_duplicate_support,
        method=method,
    )
    return residual.new_zeros(residual.shape[0], W_dec.shape[0]).scatter_add(1, index, coef)


def full_precision_cpu_matmul() -> bool:
    """Whether float32 matrix products on the CPU run in float32 (not lowered to bfloat16 or TF32 by
    ``torch.backends.mkldnn.matmul.fp32_precision``, ``torch.backends.fp32_precision`` or
    ``torch.set_float32_matmul_precision``): the certified picks' error bounds assume it."""
    cpu = getattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision", "none")
    if cpu == "ieee":
        return True
    if cpu != "none" or getattr(torch.backends, "fp32_precision", "none") not in ("none", "ieee"):
        return False
    try:
        return torch.get_float32_matmul_precision() == "highest"
    except RuntimeError:  # the newer per-backend settings are in use, and none lowers the CPU's
        return True


def choose_method(
    residual: torch.Tensor, W_dec: torch.Tensor, max_iterations: int, *, stopping: bool, method: Method
) -> str:
    """The form :func:`pursue` runs for ``method`` on these inputs (``"auto"`` resolved; an explicit
    ``"certified"`` where it cannot run is a ``ValueError``)."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    certifiable = (
        residual.device.type == "cpu"
        and residual.dtype == torch.float32
        and W_dec.dtype == torch.float32
        and not stopping
        and full_precision_cpu_matmul()
    )
    if method == "certified" and not certifiable:
        raise ConfigError(
            "method='certified' runs on the CPU in float32 with full-precision matmuls and no stopping "
            "rule (residual_threshold = 0, stop_on_duplicate_support = False)"
        )
    if method != "auto":
        return method
    if not use_gram(residual.shape[0], residual.shape[-1], W_dec.shape[0], max_iterations):
        return "recomputed"
    return "certified" if certifiable else "gram"


def gram_matrix(W_dec: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``W_dec W_decᵀ`` ``[d_sae, d_sae]`` from float32 products, stored as ``dtype``. From 2,048 rows on,
    the rows are split into 8 panels and each panel is multiplied only by the rows from its own on (the
    entries below the diagonal are copied from above): 36 of 64 blocks' products, each entry still one
    float32 dot product of ``d_in`` terms."""
    n = W_dec.shape[0]
    if n < 2048:
        return (W_dec @ W_dec.T).to(dtype)
    out = torch.empty(n, n, dtype=dtype, device=W_dec.device)
    edges = [round(i * n / 8) for i in range(9)]
    for start, end in itertools.pairwise(edges):
        panel = (W_dec[start:end] @ W_dec[start:].T).to(dtype)
        out[start:end, start:] = panel
        out[end:, start:end] = panel[:, end - start :].T
    return out


def certified_picks(
    residual: torch.Tensor, W_dec: torch.Tensor, max_iterations: int, *, gram: str | None = "auto"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Matching pursuit by the Rust core's certified search (see :func:`matching_pursuit`), without
    gradients: the picks ``[b, max_iterations]`` (int64; -1 where a row has no positive score left, from
    then on), their coefficients ``[b, max_iterations]`` (0 there), the final residuals ``[b, d_in]`` and
    the number of exact scores computed. ``gram``: the Gram matrix that keeps the estimates, ``"float32"``
    or ``"bfloat16"`` (the float32 product rounded: half the memory each pick reads; ``"auto"``), or
    None (every score computed at every pick: the reference). The results do not depend on it. float32
    CPU tensors only; a row with NaN or infinity (or every row, if ``W_dec`` has them) gets NaN
    coefficients and residuals and no picks. Refused (``ValueError``) unless float32 matrix products
    run in full precision (:func:`full_precision_cpu_matmul`)."""
    if not full_precision_cpu_matmul():
        raise ConfigError(
            "certified matching pursuit needs full-precision float32 matmuls on the CPU "
            "(torch.backends.mkldnn.matmul.fp32_precision = 'ieee')"
        )
    # float32 products whatever autocast says: the error bounds assume them
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        r = residual.detach().contiguous()
        w = W_dec.detach().contiguous()
        scores = r @ w.T
        matrices: Any
        if gram is None:
            matrices = None
        elif gram == "float32":
            matrices = gram_matrix(w).numpy()
        elif gram in ("auto", "bfloat16"):
            matrices = gram_matrix(w, torch.bfloat16).view(torch.uint16).numpy()
        else:
            raise ConfigError(f"gram must be 'auto', 'float32', 'bfloat16' or None, got {gram!r}")
        try:
            picks, coef, final, exact = _core.pursuit_picks(
                scores.numpy(), r.numpy(), w.numpy(), max_iterations, matrices, torch.get_num_threads()
            )
            return torch.from_numpy(picks), torch.from_numpy(coef), torch.from_numpy(final), exact
        except ConfigError:
            finite = torch.isfinite(r).all(dim=1) & torch.isfinite(scores).all(dim=1)
            if not bool(torch.isfinite(w).all()):
                finite.zero_()
            if bool(finite.all()):
                raise
        # NaN or infinity in a row: NaN out for that row, as the torch forms give (a diverged SAE's
        # loss is NaN, which training reports); the other rows as usual
        index = torch.full((r.shape[0], max_iterations), -1, dtype=torch.int64)
        coefs = torch.full((r.shape[0], max_iterations), float("nan"), dtype=r.dtype)
        final_rows = torch.full_like(r, float("nan"))
        exact = 0
        if bool(finite.any()):
            rows = finite.nonzero().flatten()
            out = _core.pursuit_picks(
                scores[rows].contiguous().numpy(),
                r[rows].contiguous().numpy(),
                w.numpy(),
                max_iterations,
                matrices,
                torch.get_num_threads(),
            )
            index[rows], coefs[rows], final_rows[rows] = (torch.from_numpy(a) for a in out[:3])
            exact = out[3]
    return index, coefs, final_rows, exact


class _CertifiedPursuit(torch.autograd.Function):
    """:func:`certified_picks` as an autograd function: ``(picks, coef, final residual)``, with the
    gradients of ``coef`` and the final residual taken back to ``residual`` and ``W_dec`` by the Rust
    core (the picks held fixed; deterministic for any thread count)."""

    @staticmethod
    def forward(
        ctx: Any, residual: torch.Tensor, W_dec: torch.Tensor, iterations: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        picks, coef, final, _ = certified_picks(residual, W_dec, iterations)
        ctx.save_for_backward(W_dec, picks, coef, final)
        ctx.mark_non_differentiable(picks)
        ctx.set_materialize_grads(False)
        return picks, coef, final

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, _grad_picks: None, grad_coef: torch.Tensor | None, grad_final: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        W_dec, picks, coef, final = ctx.saved_tensors
        if grad_final is None:
            grad_final = torch.zeros_like(final)
        grad_r0, grad_w = _core.pursuit_backward(
            W_dec.detach().contiguous().numpy(),
            picks.numpy(),
            coef.numpy(),
            final.numpy(),
            grad_final.float().contiguous().numpy(),
            None if grad_coef is None else grad_coef.float().contiguous().numpy(),
            torch.get_num_threads(),
        )
        return torch.from_numpy(grad_r0), torch.from_numpy(grad_w), None


def pursue(
    residual: torch.Tensor,
    W_dec: torch.Tensor,
    max_iterations: int,
    *,
    residual_threshold: float = 0.0,
    stop_on_duplicate_support: bool = False,
    method: Method = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pursuit of :func:`matching_pursuit` as its picks: ``(index [b, t], coef [b, t], r_t [b, d_in])``
    with ``t`` the iterations run; iteration ``j`` adds ``coef[:, j]`` (0 for a row that stopped) to
    latent ``index[:, j]``, and ``r_t = residual - Σ_j coef_j·W_dec[index_j]`` is the final residual.
    ``coef`` and ``r_t`` are differentiable in both inputs; the reconstruction of ``x`` (with
    ``residual = x - b_dec``) is ``x - r_t``, without a ``[b, d_sae]`` product."""
    max_iterations = as_int("max_iterations", max_iterations)
    batch = residual.shape[0]
    d_sae = W_dec.shape[0]
    use_threshold = residual_threshold > 0
    form = choose_method(
        residual, W_dec, max_iterations, stopping=use_threshold or stop_on_duplicate_support, method=method
    )
    if form == "certified" and max_iterations > 0:
        picks, coef, final = _CertifiedPursuit.apply(residual, W_dec, max_iterations)
        return picks.clamp_min(0), coef, final
    gram = form == "gram"
    indices: list[torch.Tensor] = []
    coefs: list[torch.Tensor] = []
    done = torch.zeros(batch, dtype=torch.bool, device=residual.device)
    support = torch.zeros(batch, d_sae, dtype=torch.bool, device=residual.device)
    scores: torch.Tensor | None = None  # Gram form: r·W_decᵀ, kept up to date
    update: tuple[torch.Tensor, torch.Tensor] | None = None  # Gram form: G and a reused [b, d_sae] buffer
    if gram and max_iterations > 0:
        with torch.no_grad():
            dtype = _score_dtype(residual.dtype)
            scores = (residual @ W_dec.T).to(dtype)
            if max_iterations > 1:  # (a fresh [b, d_sae] tensor per iteration would cost page faults)
                update = ((W_dec @ W_dec.T).to(dtype), torch.empty_like(scores))
    for iteration in range(max_iterations):
        with torch.no_grad():
            if scores is None:
                index = (residual @ W_dec.T).relu().argmax(dim=1)
            else:
                # relu(s).argmax without its [b, d_sae] copy: the first maximum, latent 0 if none is > 0
                top, index = scores.max(dim=1)
                index = index.masked_fill(top <= 0, 0)
        # index_select, not W_dec[index]: the latter's backward (index_put_ with accumulate) sums
        # repeated rows in a thread-dependent order on CPU, so gradients would differ from call to call.
        atom = W_dec.index_select(0, index)  # [b, d_in]
        coef = (residual * atom).sum(dim=-1).relu() * (~done).to(residual.dtype)
        indices.append(index)
        coefs.append(coef)
        residual = residual - coef[:, None] * atom
        if scores is not None and update is not None and iteration + 1 < max_iterations:
            gram_matrix, gram_rows = update
            with torch.no_grad():  # s ← s - c·G_l, the change of r·W_decᵀ under r ← r - c·W_dec_l
                torch.index_select(gram_matrix, 0, index, out=gram_rows)
                scores.addcmul_(coef.detach().to(scores.dtype)[:, None], gram_rows, value=-1)
        if stop_on_duplicate_support or use_threshold:
            with torch.no_grad():
                if stop_on_duplicate_support:
                    # coefficients are >= 0, so a latent is in the support once one of its is > 0
                    picked = index[:, None]
                    new_support = support.scatter(1, picked, support.gather(1, picked) | (coef > 0)[:, None])
                    done = done | (new_support == support).all(dim=1)
                    support = new_support
                if use_threshold:
                    done = done | (residual.norm(dim=-1) < residual_threshold)
                if bool(done.all()):
                    break
    if not indices:
        empty = residual.new_zeros(batch, 0)
        return empty.long(), empty, residual
    return torch.stack(indices, dim=1), torch.stack(coefs, dim=1), residual


class MatchingPursuitSAE(SAE):
    """Matching-pursuit SAE (tied encoder): ``encode`` runs ``k`` greedy MP iterations on
    ``x - b_dec`` over the rows of ``W_dec``; loss = MSE. See :func:`matching_pursuit`.

    ``normalize_decoder=True`` renormalises the decoder rows after every step (``renormalize_decoder``
    holds the setting; the method ``normalize_decoder()`` does it)."""

    architecture: ClassVar[str] = "mp"
    tied_encoder: ClassVar[bool] = True
    direct_l0: ClassVar[bool] = True
    in_paper: ClassVar[bool] = True
    bench_rank: ClassVar[float] = 6

    @classmethod
    def from_l0(cls, d_in: int, d_sae: int, l0: float, **kwargs: Any) -> Self:
        """``k = round(l0)`` pursuit iterations."""
        return cls(d_in, d_sae, round_l0(cls.architecture, l0), **kwargs)

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        k: int,
        *,
        residual_threshold: float = 0.0,
        stop_on_duplicate_support: bool = False,
        normalize_decoder: bool = False,
        seed: int | None = None,
        device: torch.device | str | None = None,
        decoder_init_norm: float = 1.0,
    ) -> None:
        if decoder_init_norm != 1.0:
            raise ConfigError("decoder_init_norm must be 1.0 for MatchingPursuitSAE (as in SAELens)")
        super().__init__(d_in, d_sae, decoder_init_norm=1.0, seed=seed, device=device)
        self.k = as_int("k", k, minimum=1, maximum=self.d_sae, maximum_name="d_sae")
        self.residual_threshold = as_nonnegative("residual_threshold", residual_threshold)
        self.stop_on_duplicate_support = as_bool("stop_on_duplicate_support", stop_on_duplicate_support)
        self.renormalize_decoder = as_bool("normalize_decoder", normalize_decoder)

    @property
    def W_enc(self) -> torch.Tensor:  # type: ignore[override]
        """The tied encoder ``W_decᵀ`` ``[d_in, d_sae]`` (not a separate parameter)."""
        return self.W_dec.T

    def hidden_pre(self, x: torch.Tensor) -> torch.Tensor:
        """Inner products ``(x - b_dec)·W_decᵀ`` ``[b, d_sae]`` (first MP step's scores)."""
        return (self._check_input(x) - self.b_dec) @ self.W_dec.T

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        return matching_pursuit(
            x - self.b_dec,
            self.W_dec,
            self.k,
            residual_threshold=self.residual_threshold,
            stop_on_duplicate_support=self.stop_on_duplicate_support,
        )

    def training_forward(self, x: torch.Tensor, *, dead_mask: torch.Tensor | None = None) -> TrainOutput:
        """MSE of ``x̂ = x - r_k`` (the pursuit's final residual, equal to ``decode(encode(x))`` up to
        rounding), so that no ``[b, d_sae]`` product runs forward or backward."""
        x = self._check_input(x)
        self._check_dead_mask(dead_mask)
        index, coef, residual = pursue(
            x - self.b_dec,
            self.W_dec,
            self.k,
            residual_threshold=self.residual_threshold,
            stop_on_duplicate_support=self.stop_on_duplicate_support,
        )
        x_hat = x - residual
        loss_mse = mse(x_hat, x)
        with torch.no_grad():
            z = x.new_zeros(x.shape[0], self.d_sae).scatter_add_(1, index, coef)
        return self._output(loss_mse, {"mse": loss_mse}, z, x_hat)

    def fold_decoder_norm(self) -> None:
        """Not supported: the encoder is tied, so the norms cannot move into it (as SAELens)."""
        raise NotImplementedError("fold_decoder_norm is not defined for a tied matching-pursuit SAE")

    @torch.no_grad()
    def after_step(self, output: TrainOutput) -> None:
        if self.renormalize_decoder:
            self.normalize_decoder()
        super().after_step(output)

    def _hparams(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "residual_threshold": self.residual_threshold,
            "stop_on_duplicate_support": self.stop_on_duplicate_support,
            "normalize_decoder": self.renormalize_decoder,
        }
