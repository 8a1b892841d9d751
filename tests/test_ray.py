"""`pgax sweep --backend ray` on a real local Ray cluster (`ray start --head`, stopped afterwards): the
Ray-backed sweep equals the local one bit for bit, a task whose worker is killed is retried, a task
whose retries are spent is reported on its own and `--resume` runs it again; bad backend input."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from pgax import cli

RAY = str(Path(sys.executable).with_name("ray"))
SWEEP = ["sweep", "ppo", "--env", "CartPole-v1", "--steps", str(8 * 64), "--seeds", "2", "--eval-episodes", "3",
         "--num-envs", "2", "--num-steps", "32", "--minibatches", "2", "--hidden-sizes", "16", "--no-tensorboard",
         "--no-progress", "--grid", "lr=1e-3,3e-3", "--grid", "epochs=1,2"]


@contextlib.contextmanager
def ray_cluster():
    """The address of a Ray cluster started for a test (`ray start --head`, 2 CPUs, its own temp dir), and
    at the end its processes stopped: only this cluster's (a Ray of the user's on the machine is left)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="pgaxray")
    subprocess.run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus",
                    "2", "--num-gpus", "0", "--include-dashboard", "false", "--disable-usage-stats",
                    "--temp-dir", temp], check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        ours = [p for p in psutil.process_iter(["cmdline"]) if temp in " ".join(p.info["cmdline"] or [])]
        ours += [child for p in ours for child in p.children(recursive=True)]
        for proc in ours:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(ours, timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


class KillOneTask(threading.Thread):
    """Kill (SIGKILL) the first Ray worker process seen running a sweep program, as the OOM killer would."""

    def __init__(self):
        super().__init__(daemon=True)
        self.killed: str | None = None
        self.done = threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join(timeout=10)

    def run(self):
        mine = {os.getpid()} | {p.pid for p in psutil.Process().parents()}
        while not self.done.is_set() and self.killed is None:
            for proc in psutil.process_iter(["pid", "cmdline"]):
                if proc.info["pid"] not in mine and \
                        " ".join(proc.info["cmdline"] or []).startswith("ray::program_task"):
                    os.kill(proc.info["pid"], signal.SIGKILL)
                    self.killed = f"{proc.info['pid']}: {' '.join(proc.info['cmdline'])}"
                    return
            time.sleep(0.05)


def sweep_folder(out: Path) -> Path:
    (folder,) = out.glob("*-sweep-ppo-CartPole-v1")
    return folder


def test_on_a_ray_cluster_sweeps_equal_local_ones_survive_killed_workers_and_resume(tmp_path, capsys):
    """One test, so that one cluster at a time runs on the machine whichever xdist worker runs it."""
    with ray_cluster() as address:
        # the Ray-backed sweep equals the local one bit for bit, even with a worker killed (and retried)
        assert cli.main(SWEEP + ["--out", str(tmp_path / "local")]) == 0
        with KillOneTask() as killer:
            code = cli.main(SWEEP + ["--out", str(tmp_path / "ray"), "--backend", "ray", "--address", address,
                                     "--retries", "2"])
        assert code == 0
        assert killer.killed is not None, "no Ray worker ran a program"
        local, on_ray = sweep_folder(tmp_path / "local"), sweep_folder(tmp_path / "ray")
        record = json.loads((on_ray / "sweep.json").read_text())
        assert record["status"] == "finished" and record["backend"]["name"] == "ray" and len(record["programs"]) == 2
        for row in json.loads((local / "sweep.json").read_text())["rows"]:
            folder = row["run_dir"]
            assert (on_ray / folder / "metrics.csv").read_bytes() == (local / folder / "metrics.csv").read_bytes()
            ray_row = next(r for r in record["rows"] if r["run_dir"] == folder)
            assert ray_row["final_return_per_seed"] == row["final_return_per_seed"]

        # with no retries left, the killed task's configurations are marked error on their own ...
        capsys.readouterr()
        with KillOneTask() as killer:
            code = cli.main(SWEEP + ["--out", str(tmp_path / "spent"), "--backend", "ray", "--address", address,
                                     "--retries", "0"])
        err = capsys.readouterr().err
        assert killer.killed is not None and code == 1
        folder = sweep_folder(tmp_path / "spent")
        record = json.loads((folder / "sweep.json").read_text())
        statuses = sorted(r["status"] for r in record["rows"])
        assert record["status"] == "interrupted" and statuses == ["error", "error", "finished", "finished"], statuses
        assert "failed after 0 retries" in err and "pgax sweep --resume" in err
        failed = [r["run_dir"] for r in record["rows"] if r["status"] == "error"]

        # ... and --resume runs them again, skipping the finished program
        assert cli.main(["sweep", "--resume", str(folder), "--backend", "ray", "--address", address]) == 0
        assert "finished earlier; skipped" in capsys.readouterr().out
        record = json.loads((folder / "sweep.json").read_text())
        assert record["status"] == "finished" and all(r["status"] == "finished" for r in record["rows"])
        assert all(json.loads((folder / d / "summary.json").read_text())["status"] == "finished" for d in failed)


@pytest.mark.parametrize("extra, match", [
    (["--backend", "spark"], "--backend spark: use one of local, ray"),
    (["--address", "127.0.0.1:1"], "--address is the Ray cluster of --backend ray; add --backend ray"),
    (["--backend", "ray", "--task-cpus", "0"], "--task-cpus must be > 0"),
    (["--backend", "ray", "--retries", "x"], "--retries takes a whole number, got 'x'"),
    (["--backend", "ray", "--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray cluster answers there"),
    (["--backend", "ray", "--address", "headnode"], "--address headnode: give HOST:PORT of the Ray head node"),
])
def test_bad_backend_options_are_one_line(extra, match, tmp_path, capsys):
    """Refused before Ray starts (a closed port is found by a plain TCP connect)."""
    assert cli.main(SWEEP + ["--out", str(tmp_path)] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err, err
    assert not list(tmp_path.iterdir())
