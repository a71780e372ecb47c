"""``ShardDataset``: a dataset written by ``synthsae.generate``, read as a torch IterableDataset."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from synthsae._validate import as_bool, as_int, as_seed
from synthsae.datasets.shards import (
    WORLD_DIR,
    Manifest,
    Shard,
    load_fingerprinted_world,
    read_shard,
    read_state,
)
from synthsae.errors import ConfigError
from synthsae.world.model import World
from synthsae.world.sparse import SparseBatch

_FORMATS = ("torch", "numpy")


class ShardDataset(IterableDataset[Any]):
    """Batches of rows from a dataset directory written by ``synthsae.generate``.

    Use with ``DataLoader(dataset, batch_size=None, num_workers=k)``. The shards are dealt out to the
    readers — every DataLoader worker of every ``torch.distributed`` rank — round-robin, so write at
    least as many shards as there are readers. A reader holds one batch in memory (one shard with
    ``shuffle``). Each item is the hidden activations ``[batch_size, D]`` — stored ones if the dataset
    has them, otherwise ``h = a·W + b`` (float32) computed from the stored features — or, with
    ``return_features=True``, a pair ``(hidden, SparseBatch [batch_size, N])``. A reader's batches run
    across its shards' boundaries; its last batch is short, or dropped with ``drop_last`` (so each
    reader drops fewer than ``batch_size`` rows).

    Args:
        path: the dataset directory; every shard must be written.
        batch_size: rows per batch.
        shuffle: visit shards in a random order and rows within each shard in a random order, both
            drawn from ``(seed, epoch)`` (see ``set_epoch``, which needs ``persistent_workers=False``);
            otherwise each reader's rows come in dataset order.
        format: ``"torch"`` tensors or ``"numpy"`` arrays (bfloat16 hidden becomes float32).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 4096,
        shuffle: bool = False,
        seed: int = 0,
        return_features: bool = False,
        format: str = "torch",
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.manifest: Manifest = read_state(self.path)
        missing = [s.index for s in self.manifest.shards if s.sha256 is None]
        if missing:
            raise ConfigError(
                f"{self.path} is incomplete: {len(missing)} of {len(self.manifest.shards)} shards are not "
                f"written yet (first: {missing[0]}); rerun `synthsae generate` to finish it"
            )
        self.batch_size = as_int("batch_size", batch_size, minimum=1)
        self.seed = as_seed(seed)
        self.shuffle = as_bool("shuffle", shuffle)
        self.return_features = as_bool("return_features", return_features)
        self.drop_last = as_bool("drop_last", drop_last)
        if format not in _FORMATS:
            raise ConfigError(f"format must be one of {_FORMATS}, got {format!r}")
        self.format = format
        self.epoch = 0
        self._world: World | None = None

    @property
    def num_rows(self) -> int:
        """Rows in the dataset (over all workers)."""
        return self.manifest.rows

    def set_epoch(self, epoch: int) -> None:
        """Selects the shuffle of epoch ``epoch`` (call before each epoch, as with DistributedSampler)."""
        self.epoch = as_int("epoch", epoch)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers load the world themselves (it is rebuilt from world/ on first use).
        return {**self.__dict__, "_world": None}

    def __iter__(self) -> Iterator[Any]:
        shards = self.manifest.shards
        order = np.arange(len(shards))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(shards))
        part, parts = _reader()
        if parts > len(shards):
            warnings.warn(
                f"{self.path} has {len(shards)} shards for {parts} readers: some get none "
                "(write smaller shards)",
                stacklevel=2,
            )
        order = order[part::parts]
        pieces: list[tuple[SparseBatch, torch.Tensor | None]] = []
        pending = 0
        for index in order:
            shard = shards[index]
            if self.shuffle:  # the whole shard, in a random row order
                features, hidden = self._read(shard, None)
                perm = np.random.default_rng([self.seed, self.epoch, int(index)]).permutation(shard.rows)
            pos = 0
            while pos < shard.rows:
                n = min(self.batch_size - pending, shard.rows - pos)
                if self.shuffle:
                    sel = perm[pos : pos + n]
                    pieces.append(
                        (features.take(sel), None if hidden is None else hidden[torch.from_numpy(sel)])
                    )
                else:  # only this piece's rows are read
                    pieces.append(self._read(shard, (pos, pos + n)))
                pos += n
                pending += n
                if pending == self.batch_size:
                    yield self._batch(pieces)
                    pieces, pending = [], 0
        if pieces and not self.drop_last:
            yield self._batch(pieces)

    def _read(self, shard: Shard, rows: tuple[int, int] | None) -> tuple[SparseBatch, torch.Tensor | None]:
        features, hidden = read_shard(self.path / shard.file, self.manifest.num_features, rows)
        expected = shard.rows if rows is None else rows[1] - rows[0]
        if len(features) != expected or (hidden is None) == self.manifest.hidden:
            raise ConfigError(f"{self.path / shard.file} does not match the manifest")
        return features, hidden

    def _batch(self, pieces: list[tuple[SparseBatch, torch.Tensor | None]]) -> Any:
        features = SparseBatch.concat([f for f, _ in pieces])
        if self.manifest.hidden:
            hidden = torch.cat([h for _, h in pieces])  # type: ignore[misc]
        else:
            hidden = self.world.hidden_from_features(features)
        out: Any = hidden
        if self.format == "numpy":
            out = hidden.float().numpy() if hidden.dtype == torch.bfloat16 else hidden.numpy()
        return (out, features) if self.return_features else out

    @property
    def world(self) -> World:
        """The dataset's world (loaded from ``world/`` on first use)."""
        if self._world is None:
            self._world = load_fingerprinted_world(self.path / WORLD_DIR, self.manifest.world_sha256)
        return self._world


def _reader() -> tuple[int, int]:
    """This reader's index and the number of readers: DataLoader workers × distributed ranks."""
    info = get_worker_info()
    worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
    rank, ranks = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, ranks = torch.distributed.get_rank(), torch.distributed.get_world_size()
    return rank * workers + worker, ranks * workers
