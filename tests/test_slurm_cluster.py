"""A real one-node SLURM cluster (slurmctld + slurmd + slurmdbd/MariaDB, one fake GPU),
and Snakemake's SLURM executor plugin driven against it.

Needs root and the Debian SLURM packages (installed on first use when apt can reach
the registry); skipped with the reason otherwise.  See tests/slurm_cluster.py.
"""

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import SlurmCluster, unavailable_reason  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SNAKEMAKE_TIMEOUT_S = 240


@pytest.fixture(scope="session")
def slurm_cluster():
    """A started SlurmCluster for the whole session; stopped (all daemons, by pid file)
    at the end.  Skips with the reason when a cluster cannot run here."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster()
    cluster.start()
    print(f"\nSLURM test cluster started in {cluster.start_seconds:.1f} s at {cluster.root}")
    try:
        yield cluster
    finally:
        cluster.stop()


def test_sbatch_gpu_and_cpu_jobs_are_accounted(slurm_cluster, tmp_path):
    gpu_out = tmp_path / "gpu.out"
    cpu_out = tmp_path / "cpu.out"
    gpu_id = slurm_cluster.sbatch(
        "--gpus=1", f"--output={gpu_out}", "--job-name=gpu-probe",
        "--wrap", "echo $CUDA_VISIBLE_DEVICES",
    )
    cpu_id = slurm_cluster.sbatch(
        f"--output={cpu_out}", "--job-name=cpu-probe", "--wrap", "echo ${CUDA_VISIBLE_DEVICES:-none}",
    )
    rows = {r["JobID"]: r for r in slurm_cluster.wait_jobs([gpu_id, cpu_id], timeout=60)}

    assert rows[gpu_id]["State"] == "COMPLETED", rows
    assert rows[cpu_id]["State"] == "COMPLETED", rows
    assert "gres/gpu=1" in rows[gpu_id]["AllocTRES"], rows[gpu_id]
    assert "gres/gpu" not in rows[cpu_id]["AllocTRES"], rows[cpu_id]
    assert gpu_out.read_text().strip() == "0"
    assert cpu_out.read_text().strip() == "none"


SNAKEFILE = """\
rule all:
    input:
        "results/gpu.txt",
        "results/cpu.txt",


rule gpu_job:
    output:
        "results/gpu.txt",
    log:
        "logs/gpu_job.log",
    resources:
        gpu=1,
    shell:
        "echo cuda=${{CUDA_VISIBLE_DEVICES:-unset}} job=${{SLURM_JOB_ID:-none}} > {output} 2> {log}"


rule cpu_job:
    output:
        "results/cpu.txt",
    log:
        "logs/cpu_job.log",
    shell:
        "echo cuda=${{CUDA_VISIBLE_DEVICES:-unset}} job=${{SLURM_JOB_ID:-none}} > {output} 2> {log}"
"""


def _profile(cluster) -> str:
    return textwrap.dedent(f"""\
        executor: slurm
        jobs: 4
        latency-wait: 5
        # first status check 1 s after submission (plugin default 40 s); the plugin then
        # backs off by +10 s per check in which no job finished
        slurm-init-seconds-before-status-checks: 1
        seconds-between-status-checks: 1
        default-resources:
          slurm_partition: "{cluster.partition}"
          slurm_account: "{cluster.account}"
          mem_mb: 500
          runtime: 5
        """)


def _snakemake_log(workdir: Path) -> str:
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    assert logs, "no .snakemake/log/*.snakemake.log written"
    return logs[-1].read_text()


def _line_for_rule(lines: list[str], rule: str) -> str:
    matching = [ln for ln in lines if re.search(rf"--comment rule_{rule}\b", ln)]
    assert len(matching) == 1, f"expected one sbatch call for {rule}, got:\n" + "\n".join(lines)
    return matching[0]


def _run_workflow_and_check(cluster, tmp_path: Path, profile_text: str) -> str:
    """Run SNAKEFILE through the SLURM executor with the given workflow profile and check
    outputs, sbatch lines and accounting.  Returns the gpu rule's sbatch line."""
    workdir = tmp_path / "wf"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(SNAKEFILE)
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(profile_text)

    t0 = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(workdir / "Snakefile"),
         "--directory", str(workdir), "--workflow-profile", str(profile), "--verbose"],
        env=cluster.env, capture_output=True, text=True, timeout=SNAKEMAKE_TIMEOUT_S,
    )
    elapsed = time.monotonic() - t0
    assert result.returncode == 0, (
        f"snakemake failed after {elapsed:.0f} s\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    )

    gpu = (workdir / "results" / "gpu.txt").read_text().split()
    cpu = (workdir / "results" / "cpu.txt").read_text().split()
    assert gpu[0] == "cuda=0", gpu  # SLURM bound the (fake) GPU
    assert cpu[0] == "cuda=unset", cpu
    assert gpu[1] != "job=none" and cpu[1] != "job=none"  # both ran inside SLURM jobs
    assert (workdir / "logs" / "gpu_job.log").exists()
    assert (workdir / "logs" / "cpu_job.log").exists()

    log_text = _snakemake_log(workdir)
    lines = [ln for ln in log_text.splitlines() if "sbatch call:" in ln]
    gpu_line = _line_for_rule(lines, "gpu_job")
    cpu_line = _line_for_rule(lines, "cpu_job")
    assert "--gpus=1" in gpu_line
    assert "--gpus" not in cpu_line and "--gres" not in cpu_line
    for line in (gpu_line, cpu_line):
        assert f"-p {cluster.partition}" in line and f"-A {cluster.account}" in line

    # Accounting agrees: the gpu rule's SLURM job got gres/gpu=1, the cpu rule's none.
    job_ids = dict(
        (rule, jid) for jid, rule in re.findall(
            r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", log_text)
    )
    assert set(job_ids) == {"gpu_job", "cpu_job"}, job_ids
    rows = {r["JobID"]: r for r in cluster.sacct_jobs()}
    gpu_row, cpu_row = rows[job_ids["gpu_job"]], rows[job_ids["cpu_job"]]
    assert gpu_row["State"] == cpu_row["State"] == "COMPLETED", (gpu_row, cpu_row)
    assert "gres/gpu=1" in gpu_row["AllocTRES"], gpu_row
    assert "gres/gpu" not in cpu_row["AllocTRES"], cpu_row
    return gpu_line


def test_snakemake_slurm_executor_requests_gpu(slurm_cluster, tmp_path):
    gpu_line = _run_workflow_and_check(slurm_cluster, tmp_path, _profile(slurm_cluster))
    print("\n" + gpu_line)


REPO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "slurm" / "config.yaml"


def _repo_profile_text(cluster) -> str:
    """profiles/slurm/config.yaml with its placeholders filled in for the test cluster, and
    status checks sped up for the test only."""
    text = REPO_PROFILE.read_text().replace("<your-partition>", cluster.partition)
    text = text.replace("<your-account>", cluster.account)
    return text + "\nslurm-init-seconds-before-status-checks: 1\nseconds-between-status-checks: 1\n"


def _repo_profile(cluster, tmp_path: Path) -> Path:
    """That profile written as a workflow-profile folder under ``tmp_path``."""
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(_repo_profile_text(cluster))
    return profile


def test_repo_slurm_profile_works(slurm_cluster, tmp_path):
    """profiles/slurm/config.yaml, with its placeholders filled in, is accepted by the
    plugin and gives the same submissions (status checks sped up for the test only)."""
    assert '"<your-partition>"' in REPO_PROFILE.read_text() and '"<your-account>"' in REPO_PROFILE.read_text()
    text = _repo_profile_text(slurm_cluster)
    gpu_line = _run_workflow_and_check(slurm_cluster, tmp_path, text)
    assert "-t 60" in gpu_line and "--mem 2000" in gpu_line  # the profile's defaults


REPO = Path(__file__).resolve().parents[1]
WORKFLOW_RULES_GPU = {"train_dense", "gradual", "retrain", "plane_map", "hessian", "landscape_probe",
                      "landscape_points"}


def test_workflow_runs_on_slurm_with_gpu_requests(slurm_cluster, data_mirror, tmp_path):
    """The real workflow (one small panel, every stage) through profiles/slurm with GPU
    requests on: GPU rules ask SLURM for the (fake) GPU, CPU rules do not, every job is
    accounted COMPLETED, and the jobs still compute on the CPU (device: auto)."""
    profile = _repo_profile(slurm_cluster, tmp_path)
    workdir = tmp_path / "run"
    workdir.mkdir()
    t0 = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--workflow-profile", str(profile), "--verbose",
         "--configfile", str(REPO / "tests/config/slurm.yaml"),
         "--config", f"data_mirror={data_mirror}", "gpus_per_job=1", "device=auto"],
        env=slurm_cluster.env, capture_output=True, text=True, timeout=900,
    )
    elapsed = time.monotonic() - t0
    assert result.returncode == 0, f"failed after {elapsed:.0f} s\n{result.stderr[-8000:]}"
    print(f"\nworkflow on SLURM: {elapsed:.0f} s")
    for f in ("fig1a", "fig2a", "fig2b", "fig3", "fig4a", "fig4b"):
        assert (workdir / f"results/figures/{f}.pdf").exists(), f
    log_text = _snakemake_log(workdir)
    lines = [ln for ln in log_text.splitlines() if "sbatch call:" in ln]
    by_rule = {}
    for ln in lines:
        rule = re.search(r"--comment rule_(\w+?)(?:_wildcards_\S*)?\s", ln).group(1)
        by_rule.setdefault(rule, []).append(ln)
    assert WORKFLOW_RULES_GPU <= set(by_rule), sorted(by_rule)
    for rule, calls in by_rule.items():
        for ln in calls:
            if rule in WORKFLOW_RULES_GPU:
                assert "--gpus=1" in ln, ln
            else:
                assert "--gpus" not in ln and "--gres" not in ln, ln
    # tables and figures are localrules: never submitted
    assert not {"fig1", "fig2b", "landscape_figure", "dense_table", "prepare_data"} & set(by_rule)
    print(by_rule["train_dense"][0])
    ids = re.findall(r"submitted with SLURM jobid (\d+)", log_text)
    rows = {r["JobID"]: r for r in slurm_cluster.sacct_jobs()}
    assert ids and all(rows[i]["State"] == "COMPLETED" for i in ids), [rows.get(i) for i in ids]
    # device auto: the job takes the device it really finds (here the fake GPU's
    # CUDA_VISIBLE_DEVICES without a CUDA device: the CPU; on a GPU node: CUDA)
    import torch

    found = "cuda" if torch.cuda.is_available() else "cpu"
    dense = (workdir / "logs/lenet300_mnist/dense/s0.log").read_text()
    assert f"device={found}" in dense and "(asked: auto)" in dense


FLAKY_SNAKEFILE = """\
rule flaky:
    output:
        "results/flaky.txt",
    log:
        "logs/flaky.log",
    shell:
        # the first attempt fails (a node hiccup, an OOM kill); the profile's retries rerun it
        "if [ ! -e first_attempt.done ]; then touch first_attempt.done; exit 3; fi; "
        "echo job=${{SLURM_JOB_ID:-none}} > {output} 2> {log}"
"""


def test_a_failed_job_is_retried_by_the_profile(slurm_cluster, tmp_path):
    """profiles/slurm's `retries: 1`: a job that fails once is submitted again and the
    workflow completes; accounting shows the failed and the completed attempt."""
    assert "\nretries: 1\n" in REPO_PROFILE.read_text()
    profile = _repo_profile(slurm_cluster, tmp_path)
    workdir = tmp_path / "wf"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(FLAKY_SNAKEFILE)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(workdir / "Snakefile"),
         "--directory", str(workdir), "--workflow-profile", str(profile), "--verbose"],
        env=slurm_cluster.env, capture_output=True, text=True, timeout=SNAKEMAKE_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    assert (workdir / "results/flaky.txt").read_text().startswith("job=")
    ids = re.findall(r"submitted with SLURM jobid (\d+)", _snakemake_log(workdir))
    assert len(ids) == 2, ids
    rows = {r["JobID"]: r for r in slurm_cluster.sacct_jobs()}
    assert [rows[i]["State"] for i in ids] == ["FAILED", "COMPLETED"], [rows.get(i) for i in ids]
