"""Shared start of every workflow script (Snakemake puts this folder on sys.path).

- the package imported is the one of this checkout (its code version is what results record);
- the rule's log file receives everything the job says: ``logging`` records (the library's
  ``sharpminima.*`` loggers, level INFO, timestamped), warnings, ``print`` output and
  tracebacks (stdout and stderr both go there, line-buffered).
"""

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sharpminima import LOG_DATEFMT, LOG_FORMAT  # noqa: E402


def start(snakemake) -> logging.Logger:
    """Send the job's logging, stdout and stderr to its log file; return the script's logger."""
    stream = open(snakemake.log[0], "w", buffering=1)
    sys.stdout = stream
    sys.stderr = stream
    handler = logging.StreamHandler(stream)  # flushes after every record
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATEFMT,
                        handlers=[handler], force=True)
    logging.captureWarnings(True)
    log = logging.getLogger(f"sharpminima.workflow.{snakemake.rule}")
    log.info(f"rule {snakemake.rule} wildcards={dict(snakemake.wildcards)} threads={snakemake.threads}")
    return log
