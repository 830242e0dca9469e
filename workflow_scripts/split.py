"""Draw the validation split of one data set, once, as an index file."""

from _adapter import start

log = start(snakemake)

from sharpminima.data import DATASETS, make_split, save_split

name = snakemake.wildcards.dataset
n_train = DATASETS[name].n_train
split = make_split(n_train, snakemake.params.val_fraction, snakemake.params.seed)
meta = {"dataset": name, "n_train": n_train, "val_fraction": snakemake.params.val_fraction,
        "seed": snakemake.params.seed}
save_split(snakemake.output.split, split, meta)
log.info(f"{name}: {len(split['train'])} train / {len(split['val'])} validation indices")
