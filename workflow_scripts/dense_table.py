"""Gather the dense runs into results/tables/dense.csv."""

from _adapter import start

log = start(snakemake)

from sharpminima.tables import dense_table, write_csv

table = dense_table(snakemake.input.metrics)
write_csv(table, snakemake.output.table)
log.info(table.to_string())
