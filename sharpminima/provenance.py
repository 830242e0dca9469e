"""Provenance of every result file, and atomic writes.

Every metrics JSON the workflow writes carries ``provenance``: the settings that produced
it, the seed, the device, library versions, the code version and the wall time. Outputs
appear atomically (written to a temporary file beside the target, then renamed), so an
interrupted job never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from . import __version__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path):
    """A temporary path beside ``path``; when the block ends, the file is given the mode the
    user's umask allows (as ``open`` would: 0644 under umask 022; ``mkstemp`` alone makes it
    0600, unreadable by collaborators), fsync'ed, and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_torch_save(obj, path) -> None:
    import torch  # here, so that table and figure jobs never import torch (~3 s each)

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_savefig(fig, path, **kwargs) -> None:
    """Save a matplotlib figure atomically (the format is taken from the target's suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), **kwargs)


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if type(o).__name__ == "device":  # torch.device
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the checkout the package runs from (``+dirty`` when it has
    uncommitted changes), or the package version outside a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
            cwd=root, capture_output=True, text=True, timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+g{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


# The packages whose versions every result records, whatever the job happened to import.
RECORDED_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "pyhessian",
                     "snakemake")


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Python's version and the installed version of each of :data:`RECORDED_PACKAGES`
    (``importlib.metadata``; "not installed" where absent). A CUDA job's device description
    adds the CUDA version torch was built with."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device) -> dict:
    """What decides whether two runs can agree bit for bit: the CPU model, the vector
    instructions torch dispatches to (``AVX2``, ``AVX512``, ...), the threads, and on CUDA the
    GPU's name (docs/methods.md, "What is reproducible where")."""
    import torch

    device = torch.device(device)
    out = {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "threads": torch.get_num_threads(), "platform": platform.platform()}
    if device.type == "cuda":
        out.update(cuda_device=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return out


def cpu_sample():
    """(busy jiffies of the whole machine, this process's CPU times): two samples bracket a
    measurement, :func:`others_fraction` says how busy the rest of the machine was meanwhile."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except OSError:
        return None, os.times()
    return sum(v) - v[3] - v[4], os.times()


def others_fraction(before, after, wall: float) -> float | None:
    """Fraction of the machine's CPU capacity that other processes used between two
    :func:`cpu_sample` calls ``wall`` seconds apart (None where /proc/stat is missing)."""
    if before[0] is None or after[0] is None or wall <= 0:
        return None
    total = (after[0] - before[0]) / os.sysconf("SC_CLK_TCK")
    mine = (after[1].user + after[1].system) - (before[1].user + before[1].system)
    return max(0.0, total - mine) / (wall * (os.cpu_count() or 1))


def mm_gflops(threads: int = 2, n: int = 1024, products: int = 50) -> float:
    """The machine's speed as this project states it beside every timing: fp32 ``torch.mm``
    of two ``n`` x ``n`` matrices on ``threads`` threads, GFLOP/s (2 n^3 per product; three
    products of warm-up). On the 2-core development machine it moves between 45 and 230 from
    one day to the next."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(3):
            a @ b
        t0 = time.perf_counter()
        for _ in range(products):
            a @ b
        return 2 * n**3 * products / (time.perf_counter() - t0) / 1e9
    finally:
        torch.set_num_threads(before)


def device_description(device) -> str:
    m = machine(device)
    if "cuda_device" in m:
        return f"cuda:{m['cuda_device']} (CUDA {m['cuda']})"
    return f"cpu:{m['cpu']} ({m['cpu_capability']}) threads={m['threads']}"


def provenance(*, settings: dict, seed=None, device=None, wall_time_s=None, **extra) -> dict:
    """The provenance block of a result file."""
    out = {
        "settings": settings,
        "seed": seed,
        "device": str(device) if device is not None else None,
        "device_description": device_description(device) if device is not None else None,
        "machine": machine(device) if device is not None else None,
        "code_version": code_version(),
        "libraries": dict(library_versions()),
        "host": platform.node(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 3),
    }
    out.update(extra)
    return out


class Timer:
    def __init__(self):
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


# -- fingerprints of resumable state --------------------------------------------------------

def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(settings: dict, files: dict | None = None, **digests) -> dict:
    """What a resumable state (an epoch checkpoint, LOBSTER's event files, a finished
    retraining seed) must share with the run that resumes it: the ``settings`` that change
    its result (as JSON), the sha256 of each input file in ``files`` (the split, the data
    manifest, the snapshot a retraining starts from, ...) and any precomputed ``digests``."""
    return {
        "settings": json.loads(json.dumps(settings, sort_keys=True, default=_json_default)),
        "files": {**{k: file_sha256(p) for k, p in (files or {}).items()}, **digests},
    }


def fingerprint_diff(saved: dict | None, current: dict | None) -> list[str]:
    """What differs between two fingerprints, in words (empty: the same run)."""
    if saved == current:
        return []
    if saved is None or current is None:
        return ["the state has no fingerprint (written by an older version)"
                if saved is None else "the run gives no fingerprint"]
    out = []
    a, b = saved.get("settings", {}), current.get("settings", {})
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
                for kk in sorted(set(a[k]) | set(b[k])):
                    if a[k].get(kk) != b[k].get(kk):
                        out.append(f"{k}.{kk}: {a[k].get(kk)!r} -> {b[k].get(kk)!r}")
            else:
                out.append(f"{k}: {a.get(k)!r} -> {b.get(k)!r}")
    fa, fb = saved.get("files", {}), current.get("files", {})
    out += [f"{k} changed" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    out += [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in sorted(set(saved) | set(current))
            if k not in ("settings", "files") and saved.get(k) != current.get(k)]
    return out
