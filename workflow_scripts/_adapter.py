"""Shared start of every workflow script (Snakemake puts this folder on sys.path).

- the package imported is the one of this checkout (its code version is what results record);
- stderr goes to the rule's log, and ``log`` writes timestamped, flushed lines there.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def start(snakemake):
    """Redirect stderr to the job's log and return a line logger writing there."""
    stream = open(snakemake.log[0], "w", buffering=1)
    sys.stderr = stream

    def log(msg: str) -> None:
        stream.write(time.strftime("%Y-%m-%d %H:%M:%S ") + str(msg) + "\n")

    log(f"rule {snakemake.rule} wildcards={dict(snakemake.wildcards)} threads={snakemake.threads}")
    return log
