"""The benchmark, in the order a sweep runs: its protocol (:mod:`~synthsae.bench.protocol`), the sweep
itself (:mod:`~synthsae.bench.sweep`), its files (:mod:`~synthsae.bench.records`), the report and table
(:mod:`~synthsae.bench.report`) with its statistics (:mod:`~synthsae.bench.stats`) and format
(:mod:`~synthsae.bench.schema`), the plots (:mod:`~synthsae.bench.plots`, imported on use) and the
leaderboard page (:mod:`~synthsae.bench.leaderboard`)."""

from synthsae.bench.protocol import Protocol, default_protocol, preset_protocols
from synthsae.bench.records import clear_sweep, read_header, read_run
from synthsae.bench.report import build_report, table, write_report
from synthsae.bench.sweep import RunSpec, run

__all__ = [
    "Protocol",
    "RunSpec",
    "build_report",
    "clear_sweep",
    "default_protocol",
    "preset_protocols",
    "read_header",
    "read_run",
    "run",
    "table",
    "write_report",
]
