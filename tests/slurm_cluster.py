"""A throw-away one-node SLURM cluster (with accounting) for tests.

Plain Python, no pytest needed.  Everything lives in a fresh temporary directory:
configuration, state, spool, MariaDB data directory, munge key and socket, daemon
logs and pid files.  Nothing under /etc is written; the only system-wide change is
the Debian package installation itself (done once, if the packages are missing).

Usage::

    from slurm_cluster import SlurmCluster, unavailable_reason

    if unavailable_reason() is None:
        with SlurmCluster() as cluster:
            subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env)
            subprocess.run([sys.executable, "-m", "snakemake", ...], env=cluster.env)
            print(cluster.sacct_jobs())

Clients (sbatch, squeue, sacct, sacctmgr, scontrol, and Snakemake with the SLURM
executor plugin, which calls them) find the cluster through ``cluster.env``:
``SLURM_CONF`` points at the temporary slurm.conf, which itself names the private
munge socket (``AuthInfo=socket=...`` for the daemons, ``AccountingStoragePass=<socket>``
for talking to slurmdbd) and the controller/dbd ports.  The daemons get ``-f`` (and
slurmdbd finds slurmdbd.conf beside ``$SLURM_CONF``).  Jobs inherit the submitting
environment (sbatch's default ``--export=ALL``).  The Snakemake job-step plugin,
however, starts the job's inner ``srun`` with SLURM_CONF removed, so ``cluster.env``
also puts ``<root>/bin`` first in PATH: wrappers for the client commands that pin
SLURM_CONF and exec the real ones.

The cluster has one node (hardware from ``slurmd -C``) with one fake GPU
(``Gres=gpu:1``, gres.conf ``File=/dev/null``): GPU requests are accepted, the job
sees ``CUDA_VISIBLE_DEVICES=0`` and ``sacct`` reports ``gres/gpu=1`` in AllocTRES.
Jobs run as root (``DisableRootJobs=NO``, ``SlurmUser=root``).

Daemons are stopped by the PIDs in their pid files, never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["SlurmCluster", "SlurmClusterError", "ensure_packages", "unavailable_reason"]

PACKAGES = ["munge", "slurmctld", "slurmd", "slurm-client", "slurmdbd", "mariadb-server"]

# Executables needed from the packages above (absolute paths: /usr/sbin may be
# missing from PATH of a non-login shell).
_BINARIES = {
    "munged": ["/usr/sbin/munged"],
    "slurmctld": ["/usr/sbin/slurmctld"],
    "slurmd": ["/usr/sbin/slurmd"],
    "slurmdbd": ["/usr/sbin/slurmdbd"],
    "sbatch": ["/usr/bin/sbatch"],
    "sacct": ["/usr/bin/sacct"],
    "sacctmgr": ["/usr/bin/sacctmgr"],
    "mariadbd": ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"],
    "mariadb-install-db": ["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"],
}

# Client commands wrapped in <root>/bin (see SlurmCluster._write_config).
_CLIENTS = ["sbatch", "srun", "salloc", "squeue", "sacct", "scancel", "scontrol", "sinfo",
            "sacctmgr", "sstat", "sshare", "sattach"]

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
INSTALL_TIMEOUT_S = 600

# Set SHARPMINIMA_SLURM_NO_INSTALL=1 to never run apt-get (report missing packages
# as the reason instead).
_NO_INSTALL_ENV = "SHARPMINIMA_SLURM_NO_INSTALL"


class SlurmClusterError(RuntimeError):
    """A daemon did not start, a wait timed out, or a client command failed."""


# --------------------------------------------------------------------------- #
# Packages
# --------------------------------------------------------------------------- #
def _binary(name: str) -> str | None:
    for candidate in _BINARIES[name]:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_binaries() -> list[str]:
    return [name for name in _BINARIES if _binary(name) is None]


def _apt_install(update_first: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # A policy-rc.d that exits 101 keeps package scripts from starting services.
    old_policy = POLICY_RC_D.read_bytes() if POLICY_RC_D.exists() else None
    need_policy = old_policy is None or b"exit 101" not in old_policy
    if need_policy:
        POLICY_RC_D.write_text("#!/bin/sh\n# written by tests/slurm_cluster.py\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        if update_first:
            subprocess.run(
                ["apt-get", "update", "-q"], env=env, capture_output=True, text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        return subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends",
             "-o", "Dpkg::Options::=--force-confdef",
             "-o", "Dpkg::Options::=--force-confold", *PACKAGES],
            env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
        )
    finally:
        if need_policy:
            if old_policy is None:
                POLICY_RC_D.unlink(missing_ok=True)
            else:
                POLICY_RC_D.write_bytes(old_policy)


def ensure_packages() -> None:
    """Install the Debian packages if any executable is missing.

    ``apt-get update`` runs only if the first install attempt fails.  Raises
    SlurmClusterError with apt's output tail when the install fails.
    """
    if not missing_binaries():
        return
    if os.geteuid() != 0:
        raise SlurmClusterError("SLURM packages missing and not root: cannot apt-get install")
    if shutil.which("apt-get") is None:
        raise SlurmClusterError("SLURM packages missing and no apt-get on this machine")
    try:
        result = _apt_install(update_first=False)
        if result.returncode != 0:
            result = _apt_install(update_first=True)
    except subprocess.TimeoutExpired:
        raise SlurmClusterError(f"apt-get install timed out after {INSTALL_TIMEOUT_S} s") from None
    if result.returncode != 0 or missing_binaries():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise SlurmClusterError(
            f"apt-get install {' '.join(PACKAGES)} failed (exit {result.returncode}; "
            f"still missing: {missing_binaries()}):\n{tail}"
        )


_availability_cache: dict[str, str | None] = {}


def unavailable_reason() -> str | None:
    """Why a cluster cannot run here, or None if it can.

    Installs the packages when they are missing (the only reliable way to learn
    whether the package registry is reachable); the answer is cached per process.
    """
    if "reason" in _availability_cache:
        return _availability_cache["reason"]
    reason = _unavailable_reason()
    _availability_cache["reason"] = reason
    return reason


def _unavailable_reason() -> str | None:
    if not os.uname().sysname == "Linux":
        return "SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return "SLURM test cluster needs root (daemons run as root, jobs run as root)"
    missing = missing_binaries()
    if missing:
        if os.environ.get(_NO_INSTALL_ENV, "") not in ("", "0"):
            return f"SLURM packages missing ({', '.join(missing)}) and {_NO_INSTALL_ENV} is set"
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            return f"SLURM packages missing ({', '.join(missing)}) and no apt-get/dpkg here"
        try:
            ensure_packages()
        except SlurmClusterError as exc:
            return f"cannot install SLURM packages (no network to the package registry?): {exc}"
    try:
        socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return f"hostname {socket.gethostname()!r} does not resolve"
    return None


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists": reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- #
# The cluster
# --------------------------------------------------------------------------- #
class SlurmCluster:
    """One-node SLURM cluster with slurmdbd accounting in a temporary directory.

    Attributes (valid after ``start()``):
        root        temporary directory holding everything (logs under ``root/log``)
        partition   partition name ("debug", the default partition)
        account     account the user is associated with ("testacct")
        cluster_name
        env         environment for every client and for Snakemake: os.environ without
                    inherited SLURM_*/SBATCH_*/SRUN_*/SALLOC_* variables, plus
                    SLURM_CONF=<root>/etc/slurm.conf and PATH=<root>/bin:$PATH (shims
                    that pin SLURM_CONF for clients started with a scrubbed environment,
                    like the srun inside Snakemake's jobs)
        slurm_conf  path of slurm.conf
        node        node name (the short hostname)
        ports       {"ctld", "slurmd", "dbd"}: free loopback ports chosen at start
        start_seconds  wall time of the last start(); stage_seconds: per stage

    start() installs the Debian packages first if they are missing (ensure_packages).
    Every wait is bounded by ``start_timeout`` seconds; a failure raises
    SlurmClusterError with the relevant daemon log tail and stops what was started.
    """

    def __init__(
        self,
        partition: str = "debug",
        account: str = "testacct",
        cluster_name: str = "sharpminima",
        start_timeout: float = 60.0,
        keep_dir: bool = False,
    ):
        self.partition = partition
        self.account = account
        self.cluster_name = cluster_name
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.user = "root"
        self.node = socket.gethostname().split(".")[0]
        self.root: Path | None = None
        self.env: dict[str, str] = {}
        self.slurm_conf: Path | None = None
        self.started_at: float | None = None
        self.start_seconds: float | None = None
        self.stage_seconds: dict[str, float] = {}
        self._pidfiles: dict[str, Path] = {}
        self._procs: dict[str, subprocess.Popen] = {}

    # ----------------------------------------------------------------- paths
    def _p(self, *parts: str) -> Path:
        assert self.root is not None
        return self.root.joinpath(*parts)

    def log(self, daemon: str) -> Path:
        """Log file of a daemon: munged, mariadb, slurmdbd, slurmctld, slurmd."""
        return self._p("log", f"{daemon}.log")

    # --------------------------------------------------------------- public
    def __enter__(self) -> "SlurmCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "SlurmCluster":
        t0 = time.monotonic()
        ensure_packages()
        self.root = Path(tempfile.mkdtemp(prefix="slurm-test-"))
        # Daemons run as root; keep the tree root-only except what munge needs.
        self.root.chmod(0o755)
        for d in ("etc", "log", "run", "state", "spool", "munge", "mysql"):
            self._p(d).mkdir()
        self.ports = {"ctld": _free_port(), "slurmd": _free_port(), "dbd": _free_port()}
        self.started_at = time.time()
        self.stage_seconds = {}
        try:
            for stage in (self._write_config, self._start_munge, self._start_mariadb,
                          self._start_slurmdbd, self._setup_accounting_cluster,
                          self._start_slurmctld, self._setup_accounting_user,
                          self._start_slurmd, self._wait_node_idle):
                t_stage = time.monotonic()
                stage()
                self.stage_seconds[stage.__name__.lstrip("_")] = round(
                    time.monotonic() - t_stage, 2)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Cancel jobs, stop daemons by their pid files (reverse order), remove files."""
        if self.root is None:
            return
        if "slurmctld" in self._pidfiles:
            self._cancel_all_jobs()
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadb", "munged"):
            pidfile = self._pidfiles.pop(name, None)
            if pidfile is not None:
                self._stop_pidfile(name, pidfile)
        if not self.keep_dir:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def run(self, *args: str, check: bool = True, timeout: float = 30.0,
            **kwargs) -> subprocess.CompletedProcess:
        """Run a SLURM client command with the cluster's environment."""
        try:
            result = subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                                    timeout=timeout, **kwargs)
        except subprocess.TimeoutExpired as exc:
            raise SlurmClusterError(f"{' '.join(args)} timed out after {timeout} s") from exc
        if check and result.returncode != 0:
            raise SlurmClusterError(
                f"{' '.join(args)} failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def sbatch(self, *args: str) -> str:
        """Submit with sbatch --parsable; returns the job id.  Without an --output/-o
        argument, the job's output goes to <root>/log/job-%j.out (not the cwd)."""
        if not any(a.startswith(("--output", "-o")) for a in args):
            args = (f"--output={self._p('log', 'job-%j.out')}", *args)
        out = self.run("sbatch", "--parsable", *args).stdout.strip()
        return out.split(";")[0]

    def wait_jobs(self, job_ids: list[str], timeout: float = 60.0) -> list[dict]:
        """Wait until sacct reports a final state for every job id; return their rows."""
        final = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY",
                 "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE")
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        while time.monotonic() < deadline:
            rows = [r for r in self.sacct_jobs() if r["JobID"] in job_ids]
            done = {r["JobID"] for r in rows if r["State"].split()[0] in final}
            if done >= set(job_ids):
                return rows
            time.sleep(0.5)
        raise SlurmClusterError(
            f"jobs {job_ids} not finished after {timeout} s; sacct: {rows}\n"
            f"squeue:\n{self.run('squeue', check=False).stdout}\n"
            f"slurmctld log:\n{_tail(self.log('slurmctld'))}\n"
            f"slurmd log:\n{_tail(self.log('slurmd'))}"
        )

    def sacct_jobs(self, allocations_only: bool = True) -> list[dict]:
        """All jobs of this cluster from accounting: dicts with JobID, JobName, State,
        AllocTRES (also ExitCode).  ``allocations_only=False`` adds job steps."""
        fields = ["JobID", "JobName", "State", "AllocTRES", "ExitCode"]
        start = time.strftime("%Y-%m-%dT%H:%M:%S",
                              time.localtime((self.started_at or time.time()) - 60))
        args = ["sacct", "--allusers", "--parsable2", "--noheader",
                f"--format={','.join(fields)}", f"--starttime={start}", "--endtime=now"]
        if allocations_only:
            args.append("--allocations")
        out = self.run(*args).stdout
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]

    # ---------------------------------------------------------------- config
    def _write_config(self) -> None:
        etc = self._p("etc")
        self.slurm_conf = etc / "slurm.conf"
        # munged wants its socket directory world-executable, its key directory private
        self._p("run").chmod(0o755)
        munge_socket = self._p("run", "munge.socket")
        self.munge_socket = munge_socket
        self.mysql_socket = self._p("mysql", "mysqld.sock")

        # Node hardware as slurmd sees it (drop UpTime, add the fake GPU).
        hw = subprocess.run([_binary("slurmd"), "-C"], capture_output=True, text=True,
                            timeout=30)
        node_line = next((ln for ln in hw.stdout.splitlines() if ln.startswith("NodeName=")),
                         None)
        if hw.returncode != 0 or node_line is None:
            raise SlurmClusterError(f"slurmd -C failed: {hw.stdout}{hw.stderr}")
        fields = [f for f in node_line.split() if not f.startswith(("NodeName=", "UpTime="))]
        hostname = socket.gethostname()

        conf = f"""\
# one-node test cluster written by tests/slurm_cluster.py
ClusterName={self.cluster_name}
SlurmctldHost={hostname}(127.0.0.1)
SlurmctldPort={self.ports['ctld']}
SlurmdPort={self.ports['slurmd']}
# daemons bind to loopback only
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
DisableRootJobs=NO
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={self._p('state')}
SlurmdSpoolDir={self._p('spool')}
SlurmctldPidFile={self._p('run', 'slurmctld.pid')}
SlurmdPidFile={self._p('run', 'slurmd.pid')}
SlurmctldLogFile={self.log('slurmctld')}
SlurmdLogFile={self.log('slurmd')}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without it a job with no --mem takes the whole node
DefMemPerCPU=512
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# keep finished jobs visible to squeue for a while (squeue status fallback)
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports['dbd']}
AccountingStorageTRES=gres/gpu
# the munge socket for talking to slurmdbd (AuthInfo covers only the other daemons)
AccountingStoragePass={munge_socket}
JobCompType=jobcomp/none
NodeName={self.node} NodeHostname={hostname} NodeAddr=127.0.0.1 {' '.join(fields)} Gres=gpu:1 State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        self.slurm_conf.write_text(conf)
        (etc / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n")
        (etc / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")
        dbd_conf = etc / "slurmdbd.conf"
        dbd_conf.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports['dbd']}
SlurmUser=root
LogFile={self.log('slurmdbd')}
PidFile={self._p('run', 'slurmdbd.pid')}
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
""")
        dbd_conf.chmod(0o600)  # slurmdbd refuses a world-readable slurmdbd.conf

        # Client shims: snakemake-executor-plugin-slurm-jobstep starts the job's inner
        # `srun` with every SLURM_* variable removed except the job identity, SLURM_CONF
        # included; on a real cluster srun then finds /etc/slurm/slurm.conf, here it
        # would fail ("Could not establish a configuration source").  So PATH gets a
        # directory of wrappers that pin SLURM_CONF and exec the real client.  Jobs
        # inherit PATH (sbatch --export=ALL), so this also holds inside jobs.
        shim_dir = self._p("bin")
        shim_dir.mkdir(exist_ok=True)
        shim_dir.chmod(0o755)
        for client in _CLIENTS:
            real = shutil.which(client, path="/usr/bin:/bin:/usr/sbin:/sbin")
            if real is None:
                continue
            shim = shim_dir / client
            shim.write_text(f'#!/bin/sh\nSLURM_CONF="{self.slurm_conf}"\nexport SLURM_CONF\n'
                            f'exec {real} "$@"\n')
            shim.chmod(0o755)
        base = {k: v for k, v in os.environ.items()
                if not (k.startswith("SLURM_") or k.startswith("SBATCH_")
                        or k.startswith("SALLOC_") or k.startswith("SRUN_"))}
        self.env = dict(base, SLURM_CONF=str(self.slurm_conf),
                        PATH=f"{shim_dir}{os.pathsep}{base.get('PATH', os.defpath)}")
        # Daemons: slurmdbd finds slurmdbd.conf beside $SLURM_CONF; the MariaDB client
        # library in slurmdbd finds the private server socket via MYSQL_UNIX_PORT.
        self._daemon_env = dict(self.env, MYSQL_UNIX_PORT=str(self.mysql_socket))

    # --------------------------------------------------------------- daemons
    def _fail(self, what: str, logname: str, extra: str = "") -> SlurmClusterError:
        return SlurmClusterError(
            f"{what}\n{extra}--- tail of {self.log(logname)} ---\n{_tail(self.log(logname))}"
        )

    def _launch(self, name: str, argv: list[str], pidfile: Path, logname: str) -> None:
        """Start a daemon in the foreground (as our child, so it is reaped when stopped:
        PID 1 of a container/VM may reap nothing) and wait, bounded, until its pid
        file names the live process."""
        self._pidfiles[name] = pidfile
        with open(self._p("log", f"{name}.stdout"), "w") as out:
            proc = subprocess.Popen(argv, env=self._daemon_env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.root)
        self._procs[name] = proc
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            rc = proc.poll()
            if rc is not None:
                raise self._fail(f"{name} exited with {rc} at start", logname,
                                 _tail(self._p("log", f"{name}.stdout")) + "\n")
            pid = _read_pid(pidfile)
            if pid is not None and _pid_alive(pid):
                return
            time.sleep(0.1)
        raise self._fail(f"{name}: no live pid in {pidfile} after {self.start_timeout} s",
                         logname, _tail(self._p("log", f"{name}.stdout")) + "\n")

    def _wait(self, what: str, predicate, logname: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        last = ""
        while time.monotonic() < deadline:
            ok, last = predicate()
            if ok:
                return
            time.sleep(0.25)
        raise self._fail(f"timed out waiting for {what}; last answer: {last}", logname)

    def _start_munge(self) -> None:
        key = self._p("munge", "munge.key")
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._p("munge").chmod(0o700)
        self._launch(
            "munged",
            [_binary("munged"), "--foreground", f"--key-file={key}", f"--socket={self.munge_socket}",
             f"--pid-file={self._p('run', 'munged.pid')}",
             f"--log-file={self.log('munged')}", f"--seed-file={self._p('munge', 'seed')}",
             "--num-threads=2"],
            self._p("run", "munged.pid"), "munged",
        )

        def check():
            r = subprocess.run(["munge", f"--socket={self.munge_socket}", "-n"],
                               capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                return False, r.stderr
            r2 = subprocess.run(["unmunge", f"--socket={self.munge_socket}"],
                                input=r.stdout, capture_output=True, text=True, timeout=10)
            return r2.returncode == 0, r2.stderr
        self._wait("munge round trip", check, "munged")

    def _start_mariadb(self) -> None:
        datadir = self._p("mysql", "data")
        init = subprocess.run(
            [_binary("mariadb-install-db"), "--no-defaults", f"--datadir={datadir}",
             "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db",
             "--skip-name-resolve"],
            capture_output=True, text=True, timeout=120,
        )
        self.log("mariadb-install-db").write_text(init.stdout + init.stderr)
        if init.returncode != 0:
            raise self._fail("mariadb-install-db failed", "mariadb-install-db")
        pidfile = self._p("run", "mariadb.pid")
        self._launch(
            "mariadb",
            [_binary("mariadbd"), "--no-defaults", f"--datadir={datadir}", "--user=root",
             f"--socket={self.mysql_socket}", f"--pid-file={pidfile}", "--skip-networking",
             f"--log-error={self.log('mariadb')}", "--skip-log-bin",
             "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M",
             "--innodb-lock-wait-timeout=900", "--skip-name-resolve"],
            pidfile, "mariadb",
        )
        self._wait("mariadb socket", lambda: (self.mysql_socket.exists(), ""), "mariadb")

    def _start_slurmdbd(self) -> None:
        self._launch("slurmdbd", [_binary("slurmdbd"), "-D"], self._p("run", "slurmdbd.pid"),
                     "slurmdbd")

        def check():
            r = self.run("sacctmgr", "-n", "-P", "list", "cluster", check=False)
            return r.returncode == 0, r.stdout + r.stderr
        self._wait("slurmdbd to answer sacctmgr", check, "slurmdbd")

    def _setup_accounting_cluster(self) -> None:
        self.run("sacctmgr", "-i", "add", "cluster", self.cluster_name)

    def _setup_accounting_user(self) -> None:
        self.run("sacctmgr", "-i", "add", "account", self.account,
                 f"Cluster={self.cluster_name}", "Description=test", "Organization=test")
        self.run("sacctmgr", "-i", "add", "user", self.user, f"Account={self.account}",
                 f"DefaultAccount={self.account}", f"Cluster={self.cluster_name}")

    def _start_slurmctld(self) -> None:
        self._launch("slurmctld", [_binary("slurmctld"), "-D", "-f", str(self.slurm_conf)],
                     self._p("run", "slurmctld.pid"), "slurmctld")

        def check():
            r = self.run("scontrol", "ping", check=False)
            return ("UP" in r.stdout and "DOWN" not in r.stdout), r.stdout + r.stderr
        self._wait("slurmctld to answer scontrol ping", check, "slurmctld")

    def _start_slurmd(self) -> None:
        self._launch("slurmd", [_binary("slurmd"), "-D", "-f", str(self.slurm_conf)],
                     self._p("run", "slurmd.pid"), "slurmd")

    def _wait_node_idle(self) -> None:
        def check():
            r = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False)
            states = r.stdout.split()
            return (len(states) >= 2 and states[1] == "idle"), r.stdout + r.stderr
        try:
            self._wait("node idle in sinfo", check, "slurmd")
        except SlurmClusterError as exc:
            raise SlurmClusterError(f"{exc}\n--- slurmctld ---\n{_tail(self.log('slurmctld'))}") from exc

    # ------------------------------------------------------------ shutdown
    def _cancel_all_jobs(self) -> None:
        r = self.run("squeue", "-h", "-o", "%i", check=False, timeout=10)
        ids = r.stdout.split() if r.returncode == 0 else []
        if not ids:
            return
        self.run("scancel", *ids, check=False, timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r = self.run("squeue", "-h", "-t", "R,CG,PD", "-o", "%i", check=False, timeout=10)
            if r.returncode != 0 or not r.stdout.split():
                return
            time.sleep(0.5)

    def _stop_pidfile(self, name: str, pidfile: Path, timeout: float = 20.0) -> None:
        """SIGTERM the PID in the pid file (SIGKILL after ``timeout``), then reap it."""
        proc = self._procs.pop(name, None)
        pid = _read_pid(pidfile)
        if pid is None and proc is not None:  # died before writing its pid file
            pid = proc.pid
        if pid is not None and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _pid_alive(pid):
                time.sleep(0.1)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and _pid_alive(pid):
                    time.sleep(0.1)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

if __name__ == "__main__":  # manual smoke test: python tests/slurm_cluster.py
    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"unavailable: {reason}")
    with SlurmCluster() as c:
        print(f"started in {c.start_seconds:.1f} s {c.stage_seconds}; "
              f"SLURM_CONF={c.env['SLURM_CONF']}")
        out = c.root / "gpu-job.out"
        jid = c.sbatch("--gpus=1", f"--output={out}", "--wrap", "echo $CUDA_VISIBLE_DEVICES")
        print(c.wait_jobs([jid]), "CUDA_VISIBLE_DEVICES =", out.read_text().strip())
