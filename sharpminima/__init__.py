"""sharpminima: reproduce "Pruning artificial neural networks: a way to find
well-generalizing, high-entropy sharp minima" (Tartaglione, Bragagnolo, Grangetto, ICANN 2020).

The library holds all the logic; the Snakemake workflow around it only wires files together.
"""

import contextlib
import logging

__version__ = "0.1.0"

#: One line format for every log: workflow jobs (workflow_scripts/_adapter.py), the command-line
#: tools and the benchmarks. The library itself only logs (``logging.getLogger(__name__)``).
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
LOG_DATEFMT = "%Y-%m-%d %H:%M:%S"


@contextlib.contextmanager
def quiet_logs(*names: str, level: int = logging.WARNING):
    """Within the block, the loggers ``names`` pass only records of ``level`` and above
    (e.g. no per-epoch lines of ``sharpminima.training`` while a tool times a few epochs)."""
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, before):
            lg.setLevel(lv)
