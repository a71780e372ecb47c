"""Rows to train on: a seeded stream from a world (:mod:`~synthsae.datasets.stream`), datasets written as
safetensors shards (:mod:`~synthsae.datasets.shards`, the manifest and verification), their generation
on one machine, SLURM or Dask (:mod:`~synthsae.datasets.generation`) and a torch reader
(:mod:`~synthsae.datasets.reader`, imported on use: it needs torch).
"""

from synthsae.datasets.generation import GenerateReport, generate
from synthsae.datasets.shards import VerifyReport, verify
from synthsae.datasets.stream import ActivationStream

__all__ = ["ActivationStream", "GenerateReport", "VerifyReport", "generate", "verify"]
