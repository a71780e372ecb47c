"""ActivationStream: seeded batches of hidden activations for training, prefetched in the background."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from synthsae._validate import as_bool, as_count, as_int, as_num_threads, as_seed
from synthsae.errors import ConfigTypeError
from synthsae.world.model import World, csr_tensors
from synthsae.world.sparse import SparseBatch

if TYPE_CHECKING:
    import torch


class ActivationStream:
    """Batches of hidden activations ``h = a·W + b`` ``[batch_size, D]`` (torch, on ``device``).

    Batch ``k`` holds rows ``k·batch_size .. (k+1)·batch_size − 1`` of the world's stream ``seed``, so
    the stream is deterministic and can resume at any batch (``start_batch``). A background thread
    samples the sparse features in Rust (GIL released) ``prefetch`` batches ahead; on a GPU the CSR
    goes through pinned memory and ``h`` is built on the device (embedding-bag), on the CPU by a
    parallel Rust row sum. With ``return_features=True`` each item is ``(h, SparseBatch)``.

    Iterating starts at ``start_batch`` and runs for ``num_batches`` batches (forever if None); each
    ``iter()`` restarts there. Use it in a ``for`` loop or ``with`` block so the thread is stopped.
    """

    def __init__(
        self,
        world: World,
        batch_size: int,
        *,
        seed: int,
        device: Any = None,
        dtype: Any = None,
        prefetch: int = 2,
        return_features: bool = False,
        num_threads: int | None = None,
        start_batch: int = 0,
        num_batches: int | None = None,
    ) -> None:
        import torch

        if not isinstance(world, World):
            raise ConfigTypeError(f"world must be a synthsae.World, got {type(world).__name__}")
        self.world = world
        self.prefetch = as_int("prefetch", prefetch, minimum=1)
        # Each batch in flight holds its row pointers and dense hidden activations at least.
        self.batch_size = as_count(
            "batch_size",
            batch_size,
            minimum=1,
            bytes_each=(self.prefetch + 1) * (8 + 4 * world.hidden_dim),
            what=f"rows in each of {self.prefetch + 1} batches in flight",
        )
        self.seed = as_seed(seed)
        self.start_batch = as_int("start_batch", start_batch, minimum=0)
        self.num_batches = None if num_batches is None else as_int("num_batches", num_batches, minimum=0)
        self.num_threads = as_num_threads(num_threads)
        self.device = torch.device(device if device is not None else "cpu")
        self.dtype = dtype or torch.float32
        if not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point:
            raise ConfigTypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.return_features = as_bool("return_features", return_features)
        self._on_cpu = self.device.type == "cpu"

    def batch(self, k: int) -> torch.Tensor | tuple[torch.Tensor, SparseBatch]:
        """Batch ``k`` computed directly (no thread)."""
        features = self._features(as_int("k", k, minimum=0))
        return self._finish(features, self._cpu_hidden(features))

    def _features(self, k: int) -> SparseBatch:
        return self.world.sample_features(
            self.batch_size, seed=self.seed, start=k * self.batch_size, num_threads=self.num_threads
        )

    def _cpu_hidden(self, features: SparseBatch) -> Any:
        """The CPU half of a batch: on the CPU device h in float32 (Rust, GIL released); else the CSR
        as CPU tensors, pinned for a CUDA device."""
        if self._on_cpu:
            return self.world.hidden_from_features(features)
        return csr_tensors(features, pin=self.device.type == "cuda")

    def _finish(self, features: SparseBatch, cpu: Any) -> torch.Tensor | tuple[torch.Tensor, SparseBatch]:
        if self._on_cpu:
            hidden = cpu if cpu.dtype == self.dtype else cpu.to(self.dtype)
        else:
            hidden = self.world.hidden_from_csr_tensors(*cpu, device=self.device, dtype=self.dtype)
        return (hidden, features) if self.return_features else hidden

    def __iter__(self) -> Generator[torch.Tensor | tuple[torch.Tensor, SparseBatch], None, None]:
        items: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        end = None if self.num_batches is None else self.start_batch + self.num_batches

        def produce() -> None:
            k = self.start_batch
            try:
                while not stop.is_set() and (end is None or k < end):
                    features = self._features(k)
                    item = (features, self._cpu_hidden(features))
                    while not stop.is_set():
                        try:
                            items.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    k += 1
                items.put(None)
            except BaseException as e:  # handed to the consumer, re-raised there
                items.put(e)

        thread = threading.Thread(target=produce, name="synthsae-stream", daemon=True)
        thread.start()
        try:
            while True:
                item = items.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield self._finish(*item)
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    items.get(timeout=0.05)
                except queue.Empty:
                    pass
            thread.join()
