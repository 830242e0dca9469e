"""Make one data set present, md5-verified and parsed under data_dir (offline mirror or
download); prepare_dataset writes the manifest and the tensors the other jobs read."""

from _adapter import start

start(snakemake)

from sharpminima.data import prepare_dataset

prepare_dataset(snakemake.wildcards.dataset, snakemake.params.data_dir, mirror=snakemake.params.mirror)
