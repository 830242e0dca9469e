# --- data fixtures ---
# Offline data set mirror and a session-wide prepared MNIST folder (owner: sharpminima/data.py).
# The mirror is $SHARPMINIMA_DATA_MIRROR if set, else <repo>/../shared/datasets; tests that
# need it are skipped (with the reason) when it is absent.
import os as _os
from pathlib import Path as _Path

import pytest as _pytest


def _find_data_mirror() -> "_Path | None":
    env = _os.environ.get("SHARPMINIMA_DATA_MIRROR")
    path = _Path(env) if env else _Path(__file__).resolve().parents[2] / "shared/datasets"
    return path if path.is_dir() else None


@_pytest.fixture(scope="session")
def data_mirror() -> _Path:
    """The offline data set mirror (torchvision layout, files plain or .gz); skips if absent."""
    path = _find_data_mirror()
    if path is None:
        why = "no data set mirror: set SHARPMINIMA_DATA_MIRROR or provide ../shared/datasets"
        if _os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            # in CI a skip would pass green having run none of the data and workflow tests
            _pytest.fail(f"{why} (CI is set: the data and workflow tests must run)", pytrace=False)
        _pytest.skip(why)
    return path


@_pytest.fixture(scope="session")
def mnist_data_dir(data_mirror, tmp_path_factory) -> _Path:
    """A data_dir with MNIST prepared (decompressed, md5-checked, parsed) from the mirror, per session."""
    from sharpminima.data import prepare_dataset

    data_dir = tmp_path_factory.mktemp("data")
    prepare_dataset("mnist", data_dir, mirror=data_mirror, download=False)
    return data_dir


# --- end data fixtures ---


# --- workflow fixtures ---
# Drive the Snakemake CLI in a subprocess, in a scratch working directory, as a user would.
import subprocess as _subprocess
import sys as _sys

REPO = _Path(__file__).resolve().parents[1]
TINY = REPO / "tests/config/tiny.yaml"


def snakemake(*args, cwd, check=True, timeout=900):
    """Run ``snakemake -s <repo>/Snakefile ARGS`` in ``cwd``; returns the CompletedProcess
    (stdout and stderr merged). With ``check``, a failure shows Snakemake's output."""
    cmd = [_sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *map(str, args)]
    proc = _subprocess.run(cmd, cwd=cwd, stdout=_subprocess.PIPE, stderr=_subprocess.STDOUT,
                           text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(map(str, args))} failed:\n{proc.stdout[-6000:]}")
    return proc


@_pytest.fixture(scope="session")
def tiny_run(data_mirror, tmp_path_factory):
    """One real run of the whole default target on the tiny configuration (shared by tests)."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    proc = snakemake("--cores", "2", "--configfile", TINY, "--config", f"data_mirror={data_mirror}",
                     cwd=workdir)
    return workdir, proc


# --- end workflow fixtures ---


@_pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Unit tests work on tiny tensors: one torch thread avoids OpenMP barrier stalls on a
    busy 2-core machine (workflow tests run in subprocesses and are unaffected)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
