"""Real clusters on 127.0.0.1 for the cluster tests: a Ray head plus one separate worker node, and a Spark standalone
master plus one worker.

Every process is started in a process group of its own, with its own temp, log and pid folders, and stopped by
killing that group (and any process whose command line names those folders). `ray stop` is not used: it kills every
Ray process of the user on the machine, including clusters other test processes started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

BIN = Path(sys.executable).parent
WORKER_RESOURCE = "tessera_worker"


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Ray 2.60 turns token authentication on by default for new clusters; drivers then need the cluster's token. The
# cluster gets a token of its own, and `ray_cluster` gives it to this process (drivers inherit it from there). Usage
# stats off: Ray Data's usage poller would otherwise query the cluster's Prometheus endpoint, and print a traceback
# at exit once the cluster is gone.
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}


def _node_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "SPARK_MASTER")}
    env.update(AUTH)
    env.update(NO_ALBUMENTATIONS_UPDATE="1", RAY_USAGE_STATS_ENABLED="0", SPARK_LOCAL_IP="127.0.0.1",
               # A killed node is declared dead within ~2 s instead of ~15-30 s.
               RAY_health_check_period_ms="500", RAY_health_check_timeout_ms="500",
               RAY_health_check_failure_threshold="3", RAY_health_check_initial_delay_ms="0")
    return env


def _pids_naming(text: str) -> list[int]:
    """Our own processes whose command line contains `text` (a folder only this fixture uses)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            pids.append(int(entry.name))
    return pids


def _kill_group(proc: subprocess.Popen | None, grace: float = 2.0) -> None:
    """SIGTERM the process group `proc` leads, then SIGKILL it if it is still there after `grace` seconds."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _kill_naming(text: str) -> None:
    for pid in _pids_naming(text):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class RayCluster:
    """A Ray head (1 CPU) and worker nodes (1 CPU and the `tessera_worker` resource each), all on 127.0.0.1."""

    root: Path
    port: int = field(default_factory=free_port)
    head: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        tmp = self.root / name  # short: Ray's socket paths must stay under 107 characters
        tmp.mkdir(parents=True, exist_ok=True)
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        cmd = [str(BIN / "ray"), "start", "--block", f"--temp-dir={tmp}", "--node-ip-address=127.0.0.1",
               "--num-cpus=1", f"--dashboard-agent-listen-port={free_port()}", *args]
        return subprocess.Popen(cmd, env=_node_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_head(self) -> None:
        self.head = self._start("h", ["--head", f"--port={self.port}", "--include-dashboard=false",
                                      "--disable-usage-stats", f"--ray-client-server-port={free_port()}"])

    def start_worker(self) -> subprocess.Popen:
        """One more worker node process; wait for it with `wait_for_nodes`."""
        proc = self._start(f"w{len(self.workers)}", [f"--address={self.address}",
                                                     f"--resources={json.dumps({WORKER_RESOURCE: 1})}"])
        self.workers.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen) -> None:
        """Kill a worker node at once (SIGKILL to its whole process group), as a lost machine would."""
        name = f"w{self.workers.index(proc)}"
        _kill_group(proc, grace=0)
        _kill_naming(str(self.root / name))

    @contextmanager
    def driver(self):
        """This process as a Ray driver of the cluster: the current one if connected, else a short-lived one."""
        import ray

        if ray.is_initialized():
            yield ray
            return
        ray.init(address=self.address, log_to_driver=False)
        try:
            yield ray
        finally:
            ray.shutdown()

    def wait_for_nodes(self, alive: int, timeout: float = 60.0) -> list[dict]:
        """Wait until exactly `alive` nodes are alive; their `ray.nodes()` entries."""
        deadline = time.monotonic() + timeout
        with self.driver() as ray:
            while True:
                nodes = [n for n in ray.nodes() if n["Alive"]]
                if len(nodes) == alive:
                    return nodes
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Ray cluster {self.address}: {len(nodes)} nodes alive, wanted {alive}; "
                                       f"logs in {self.root}")
                time.sleep(0.2)

    def worker_node_ids(self) -> set[str]:
        """Node ids of the alive nodes that carry the worker resource."""
        return {n["NodeID"] for n in self.wait_for_nodes(1 + sum(p.poll() is None for p in self.workers))
                if WORKER_RESOURCE in n["Resources"]}

    def stop(self) -> None:
        for proc in self.workers:
            _kill_group(proc)
        _kill_group(self.head)
        _kill_naming(str(self.root))


def _forget_session_logs(root: Path) -> None:
    """Ray Data's log handler caches its file in the first session's folder; once the cluster's folder is gone, a
    later Ray run in this process would fail writing there. Make it pick the next session's folder instead."""
    import logging

    loggers = [logging.getLogger()] + [x for x in logging.Logger.manager.loggerDict.values()
                                       if isinstance(x, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            inner = getattr(handler, "_handler", None)
            if str(getattr(handler, "_path", "") or "").startswith(str(root)) and inner is not None:
                inner.close()
                handler._handler, handler._path = None, None


@contextmanager
def ray_cluster():
    """A running Ray head plus one worker node; yields the RayCluster, stops every process of it at the end."""
    root = Path(tempfile.mkdtemp(prefix="tray", dir="/tmp"))
    cluster = RayCluster(root)
    saved = {k: os.environ.get(k) for k in AUTH}
    os.environ.update(AUTH)
    _reload_ray_auth()
    try:
        cluster.start_head()
        cluster.start_worker()
        cluster.wait_for_nodes(2)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        _forget_session_logs(root)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reload_ray_auth()


def _reload_ray_auth() -> None:
    """Make an already imported Ray re-read RAY_AUTH_MODE and the token (it caches both per process)."""
    if "ray" not in sys.modules:
        return
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@dataclass
class SparkCluster:
    """A Spark standalone master and one worker (1 core, 1 GiB), started with pyspark's own spark-daemon.sh."""

    root: Path
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)

    @property
    def master(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def env(self) -> dict:
        import pyspark

        home = Path(pyspark.__file__).parent
        env = _node_env()
        env.update(SPARK_HOME=str(home), SPARK_LOG_DIR=str(self.root / "logs"), SPARK_PID_DIR=str(self.root / "pids"),
                   SPARK_IDENT_STRING=f"tessera{os.getpid()}", SPARK_WORKER_DIR=str(self.root / "work"),
                   SPARK_WORKER_CORES="1", SPARK_WORKER_MEMORY="1g", PYSPARK_PYTHON=sys.executable,
                   # names the folder on the daemons' command lines, so that `stop` can find any leftover
                   SPARK_DAEMON_JAVA_OPTS=f"-Dtessera.cluster={self.root}")
        if "JAVA_HOME" not in env and shutil.which("java"):
            env["JAVA_HOME"] = str(Path(os.path.realpath(shutil.which("java"))).parent.parent)
        return env

    def _daemon(self, action: str, cls: str, *args: str) -> None:
        import pyspark

        script = Path(pyspark.__file__).parent / "sbin" / "spark-daemon.sh"
        subprocess.run(["bash", str(script), action, cls, "1", *args], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def start(self, timeout: float = 90.0) -> None:
        self._daemon("start", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
                     "--webui-port", str(self.ui_port))
        self._daemon("start", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--webui-port",
                     str(free_port()), "--cores", "1", "--memory", "1g", "--work-dir", str(self.root / "work"),
                     self.master)
        deadline = time.monotonic() + timeout
        while self.alive_workers() < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Spark master {self.master}: no worker registered; logs in {self.root / 'logs'}")
            time.sleep(0.5)

    def alive_workers(self) -> int:
        """Workers the master's JSON status page lists as ALIVE (0 while the master is not up)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as r:
                status = json.load(r)
        except OSError:
            return 0
        return sum(w.get("state") == "ALIVE" for w in status.get("workers", []))

    def applications(self) -> list[dict]:
        """Applications the master has run and is running (the JSON status page)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as r:
            status = json.load(r)
        return status.get("activeapps", []) + status.get("completedapps", [])

    def stop(self) -> None:
        for cls in ("org.apache.spark.deploy.worker.Worker", "org.apache.spark.deploy.master.Master"):
            try:
                self._daemon("stop", cls)
            except (subprocess.SubprocessError, OSError):
                pass
        _kill_naming(str(self.root))


@contextmanager
def spark_cluster():
    """A running Spark standalone master and worker; yields the SparkCluster, stops both at the end."""
    root = Path(tempfile.mkdtemp(prefix="tspark", dir="/tmp"))
    cluster = SparkCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def rows(folder: Path, columns: list[str] | None = None) -> dict[str, dict]:
    """Every row of the parquet files in `folder`, by key; fails on a key written twice."""
    out: dict[str, dict] = {}
    for path in sorted(Path(folder).glob("*.parquet")):
        for row in pq.read_table(path, columns=columns).to_pylist():
            assert row["key"] not in out, f"{row['key']} written twice ({path})"
            out[row["key"]] = row
    return out
