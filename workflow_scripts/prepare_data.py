"""Make one data set present and md5-verified under data_dir (offline mirror or download)."""

from _adapter import start

log = start(snakemake)

from sharpminima.data import prepare_dataset
from sharpminima.provenance import atomic_write_json

manifest = prepare_dataset(
    snakemake.wildcards.dataset,
    snakemake.params.data_dir,
    mirror=snakemake.params.mirror,
    log=log,
)
atomic_write_json(snakemake.output.manifest, manifest)
log(f"verified {len(manifest['files'])} files ({manifest['source']})")
