"""Smoke check of an installed synthsae that needs only numpy (no torch): prints the build, samples
a correlated world (rank-4 copula, which runs the vector kernels; one exclusive group) with every
kernel this CPU runs, and checks all give the same bits. Prints their digest (the same in every
build of the same source).

    python .ci/smoke.py [--installed]   # --installed: fail unless synthsae comes from site-packages
"""

from __future__ import annotations

import hashlib
import sys
from statistics import NormalDist

import numpy as np

import synthsae
from synthsae import _core

info = synthsae.build_info()
print(f"synthsae {info['version']} from {synthsae.__file__}: {info}")
if "--installed" in sys.argv and "site-packages" not in synthsae.__file__:
    sys.exit(f"synthsae was imported from {synthsae.__file__}, not from an installed package")
n, rank = 3000, 4
p = np.linspace(0.002, 0.2, n)
factor = np.random.default_rng(0).standard_normal((n, rank))
factor = (factor / np.linalg.norm(factor, axis=1, keepdims=True) * 0.6).astype(np.float32)  # |F_i| = 0.6
diag = (1 - (factor.astype(np.float64) ** 2).sum(1)).astype(np.float32)
thresholds = np.array([NormalDist().inv_cdf(1 - q) for q in p], dtype=np.float32)
# One group: features 1-4 fire only with feature 0 and exclude one another.
group = np.zeros(1, np.int32), np.ones(1, np.bool_), np.zeros(1, np.bool_), np.array([0, 4], np.int64)
sampler = _core.WorldSampler(
    p, np.ones(n, np.float32), np.full(n, 0.1, np.float32), factor, diag, thresholds,
    *group, np.arange(1, 5, dtype=np.int32),
)  # fmt: skip
digests = {}
for kernel in info["kernels"]:
    synthsae.set_kernel(kernel)
    indptr, indices, values = sampler.sample(7, 0, 20_000)
    assert indptr[-1] > 20_000, "too few active features to compare"
    digests[kernel] = hashlib.sha256(indptr.tobytes() + indices.tobytes() + values.tobytes()).hexdigest()
synthsae.set_kernel(None)
assert len(set(digests.values())) == 1, f"kernels disagree: {digests}"
print(f"same bits from {', '.join(digests)}: {next(iter(digests.values()))}")
