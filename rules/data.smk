# Data sets in torchvision's layout (offline mirror or download, md5-checked) and the one
# validation split per data set that every method shares.


# Downloads need the network, which compute nodes often lack: these run on the head node.
localrules:
    prepare_data,
    split,


rule prepare_data:
    output:
        manifest=f"{DATA_DIR}/{{dataset}}.manifest.json",
        tensors=f"{DATA_DIR}/{{dataset}}.tensors.pt",
    log:
        "logs/data/{dataset}.log",
    conda:
        "../envs/sharpminima.yaml"
    params:
        data_dir=lambda wc, output: Path(output.manifest).parent,
        mirror=config["data_mirror"],
    script:
        "../workflow_scripts/prepare_data.py"


rule split:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
    output:
        split=paths.SPLIT,
    log:
        "logs/splits/{dataset}.log",
    conda:
        "../envs/sharpminima.yaml"
    params:
        val_fraction=config["val_fraction"],
        seed=config["split_seed"],
    script:
        "../workflow_scripts/split.py"
