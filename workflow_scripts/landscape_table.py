"""One landscape's G and 1-S side by side (results/landscape/<panel>/<method>/solutions.csv;
results/tables/landscape.csv stacks them all); the claims rule judges the paper's statements
about them."""

from _adapter import start

log = start(snakemake)

from sharpminima.tables import landscape_summary, provenance_columns, read_metrics, write_csv

plane = read_metrics(snakemake.input.plane)
rewind = next(m for m in map(read_metrics, snakemake.input.rewind_metrics)
              if abs(m["target"] - plane["target"]) < 1e-9)
solutions = landscape_summary(
    plane, snakemake.input.loss, snakemake.input.psp, snakemake.input.hessian,
    read_metrics(snakemake.input.trajectory), rewind)
for k, v in provenance_columns(read_metrics(snakemake.input.loss_meta)).items():
    solutions[k] = v
write_csv(solutions, snakemake.output.solutions)
log.info(solutions.to_string())
