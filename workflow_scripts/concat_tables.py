"""Stack several CSV tables with the same columns into one."""

from _adapter import start

log = start(snakemake)

import pandas as pd

from sharpminima.tables import write_csv

table = pd.concat([pd.read_csv(f) for f in snakemake.input.csv], ignore_index=True)
write_csv(table, snakemake.output.table)
log.info(f"{len(table)} rows from {len(snakemake.input.csv)} files")
