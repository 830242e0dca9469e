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
        _pytest.skip(
            "no data set mirror: set SHARPMINIMA_DATA_MIRROR or provide ../shared/datasets"
        )
    return path


@_pytest.fixture(scope="session")
def mnist_data_dir(data_mirror, tmp_path_factory) -> _Path:
    """A data_dir with MNIST prepared (decompressed, md5-checked) from the mirror, per session."""
    from sharpminima.data import prepare_dataset

    data_dir = tmp_path_factory.mktemp("data")
    prepare_dataset("mnist", data_dir, mirror=data_mirror, download=False, log=lambda m: None)
    return data_dir


# --- end data fixtures ---
