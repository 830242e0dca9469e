# sharpminima: "Pruning artificial neural networks: a way to find well-generalizing,
# high-entropy sharp minima" (Tartaglione, Bragagnolo, Grangetto, ICANN 2020), end to end.
# Stages live in rules/*.smk; all Python helpers in rules/common.smk; all logic in sharpminima/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/dense.smk"
include: "rules/pruning.smk"
include: "rules/tables.smk"
include: "rules/landscape.smk"
include: "rules/features.smk"
include: "rules/figures.smk"


rule all:
    default_target: True
    input:
        paths.all_targets(config),
