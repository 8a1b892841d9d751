"""`pgax sweep --backend ray` on a real local Ray cluster (`ray start --head`, stopped afterwards): the
Ray-backed sweep equals the local one bit for bit, a task whose worker is killed is retried, a task
whose retries are spent is reported on its own and `--resume` runs it again; bad backend input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from pgax import cli

pytestmark = pytest.mark.xdist_group("ray")  # one cluster at a time on the machine

RAY = str(Path(sys.executable).with_name("ray"))
SWEEP = ["sweep", "ppo", "--env", "CartPole-v1", "--steps", str(8 * 64), "--seeds", "2", "--eval-episodes", "3",
         "--num-envs", "2", "--num-steps", "32", "--minibatches", "2", "--hidden-sizes", "16", "--no-tensorboard",
         "--no-progress", "--grid", "lr=1e-3,3e-3", "--grid", "epochs=1,2"]


@pytest.fixture(scope="module")
def cluster():
    """The address of a Ray cluster started for these tests (2 CPUs), stopped at the end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus",
                    "2", "--num-gpus", "0", "--include-dashboard", "false", "--disable-usage-stats"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


class KillOneTask(threading.Thread):
    """Kill (SIGKILL) the first Ray worker process seen running a sweep program, as the OOM killer would."""

    def __init__(self):
        super().__init__(daemon=True)
        self.killed: str | None = None
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set() and self.killed is None:
            for proc in psutil.process_iter(["pid", "cmdline"]):
                if " ".join(proc.info["cmdline"] or []).startswith("ray::program_task"):
                    os.kill(proc.info["pid"], signal.SIGKILL)
                    self.killed = " ".join(proc.info["cmdline"])
                    return
            time.sleep(0.05)


def sweep_folder(out: Path) -> Path:
    (folder,) = out.glob("*-sweep-ppo-CartPole-v1")
    return folder


def test_a_sweep_on_ray_equals_the_local_sweep_and_a_killed_worker_is_retried(tmp_path, cluster, capsys):
    assert cli.main(SWEEP + ["--out", str(tmp_path / "local")]) == 0
    killer = KillOneTask()
    killer.start()
    code = cli.main(SWEEP + ["--out", str(tmp_path / "ray"), "--backend", "ray", "--address", cluster,
                             "--retries", "2"])
    killer.done.set()
    assert code == 0
    assert killer.killed is not None, "no Ray worker ran a program"
    local, on_ray = sweep_folder(tmp_path / "local"), sweep_folder(tmp_path / "ray")
    record = json.loads((on_ray / "sweep.json").read_text())
    assert record["status"] == "finished" and record["backend"]["name"] == "ray" and len(record["programs"]) == 2
    for row in json.loads((local / "sweep.json").read_text())["rows"]:
        folder = row["run_dir"]
        assert (on_ray / folder / "metrics.csv").read_bytes() == (local / folder / "metrics.csv").read_bytes(), folder
        ray_row = next(r for r in record["rows"] if r["run_dir"] == folder)
        assert ray_row["final_return_per_seed"] == row["final_return_per_seed"]


def test_a_task_whose_retries_are_spent_is_reported_on_its_own_and_resume_runs_it(tmp_path, cluster, capsys):
    killer = KillOneTask()
    killer.start()
    code = cli.main(SWEEP + ["--out", str(tmp_path), "--backend", "ray", "--address", cluster, "--retries", "0"])
    killer.done.set()
    err = capsys.readouterr().err
    assert killer.killed is not None and code == 1
    folder = sweep_folder(tmp_path)
    record = json.loads((folder / "sweep.json").read_text())
    statuses = sorted(r["status"] for r in record["rows"])
    assert record["status"] == "interrupted" and statuses == ["error", "error", "finished", "finished"], statuses
    assert "failed after 0 retries" in err and "pgax sweep --resume" in err
    failed = [r["run_dir"] for r in record["rows"] if r["status"] == "error"]
    assert cli.main(["sweep", "--resume", str(folder), "--backend", "ray", "--address", cluster]) == 0
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
    assert cli.main(SWEEP + ["--out", str(tmp_path)] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err, err
    assert not list(tmp_path.iterdir())
