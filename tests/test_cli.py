"""The `pgax` command: bad input gives one line and exit status 2; a run writes its folder."""

import json
import subprocess
import sys

import pytest
import yaml

from pgax.cli import main


@pytest.mark.parametrize("argv, message", [
    (["train", "ppq"], "unknown algorithm 'ppq'; choose one of: reinforce,"),
    (["train"], "name an algorithm"),
    (["fly"], "unknown command 'fly'"),
    (["train", "ppo", "--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
    (["train", "ppo", "--steps", "0"], "--steps must be a positive integer, got 0"),
    (["train", "ppo", "--steps", "100"], "--steps 100 is less than one batch"),
    (["train", "ppo", "--seeds", "-1"], "--seeds must be a positive integer"),
    (["train", "ppo", "--num-envs", "0"], "--num-envs must be a positive integer"),
    (["train", "ppo", "--minibatches", "3"], "--minibatches 3 does not divide the batch"),
    (["train", "ppo", "--clip-eps", "-0.1"], "--clip-eps must be positive"),
    (["train", "ppo", "--lr", "-1e-3"], "--lr must be positive"),
    (["train", "ppo", "--gamma", "1.5"], "--gamma must lie in [0, 1]"),
    (["train", "ppo", "--activation", "swish"], "--activation 'swish' is not known"),
    (["train", "ppo", "--seed", "4294967296"], "--seed 4294967296 with --seeds 3 leaves [0, 2^32)"),
    (["train", "ppo", "--seed", "-1"], "--seed -1 with --seeds 3 leaves [0, 2^32)"),
    (["train", "ppo", "--steps", "1000000000001"], "is more than 1e+12 steps per seed"),
    (["train", "ppo", "--steps", "99999999999999999999999"], "is more than 1e+12 steps per seed"),
    (["train", "ppo", "--chunk-iterations", "100000000"], "--chunk-iterations 100000000 is more than 100000"),
    (["train", "ppo", "--checkpoint-every", "often"], "--checkpoint-every 'often': give iterations"),
    (["train", "ppo", "--keep-checkpoints", "0"], "--keep-checkpoints must be a positive integer"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = main(argv + (["--out", str(tmp_path)] if argv[:2] == ["train", "ppo"] else []))
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_unparsable_value_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "ppo", "--steps", "many"])
    assert exc.value.code == 2


def test_list_names_algorithms_and_envs(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ppo" in out and "CartPole-v1" in out


def test_train_writes_the_run_folder(tmp_path):
    cmd = [sys.executable, "-m", "pgax", "train", "ppo", "--env", "CartPole-v1", "--steps", "4096", "--seeds", "2",
           "--num-envs", "4", "--num-steps", "64", "--eval-episodes", "5", "--out", str(tmp_path), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = list(tmp_path.iterdir())
    assert run_dir.name.endswith("-ppo-CartPole-v1")
    assert {p.name for p in run_dir.iterdir()} >= {"config.yaml", "metrics.csv", "curve.png", "summary.json"}
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["config"]["num_steps"] == 64 and config["run"]["seeds"] == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("algorithm", "env", "steps", "seeds", "final_return_mean", "steps_per_second", "compile_seconds",
                "wall_seconds"):
        assert key in summary
    assert summary["steps"] == 4096 and summary["seeds"] == 2 and summary["final_return_mean"] > 0
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:10] == ["step", "seed", "episode_return_mean", "policy_loss", "value_loss", "entropy",
                           "approx_kl", "clip_fraction", "explained_variance", "grad_norm"]
    assert len(lines) == 1 + 16 * 2  # 16 iterations × 2 seeds
    assert "evaluation: mean return" in proc.stdout


def test_bad_input_via_the_installed_command_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "pgax", "train", "ppo", "--clip-eps", "-1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "pgax: error: --clip-eps must be positive, got -1.0"


def test_config_file_sets_defaults_and_flags_override(tmp_path):
    from pgax.algorithms import get_preset
    from pgax.cli import parse_train_args

    file = tmp_path / "ppo.yaml"
    file.write_text("env: Acrobot-v1\nsteps: 8192\nlr: 1.0e-3\nhidden_sizes: [32, 16]\nanneal_lr: false\n")
    preset, run, config = parse_train_args(["ppo", "--config", str(file), "--lr", "5e-4"])
    assert preset is get_preset("ppo")
    assert run.env == "Acrobot-v1" and run.steps == 8192
    assert config.lr == 5e-4 and config.hidden_sizes == (32, 16) and config.anneal_lr is False


def test_saved_run_config_repeats_the_run(tmp_path):
    from pgax.cli import parse_train_args

    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump({"algorithm": "ppo", "env": "CartPole-v1",
                                     "run": {"env": "CartPole-v1", "steps": 4096, "seeds": 2},
                                     "config": {"num_steps": 64, "clip_eps": 0.1}}))
    _, run, config = parse_train_args(["ppo", "--config", str(saved)])
    assert (run.steps, run.seeds, config.num_steps, config.clip_eps) == (4096, 2, 64, 0.1)


@pytest.mark.parametrize("content, message", [
    ("lrr: 1.0\n", "unknown option 'lrr' for ppo"),
    ("lr: fast\n", "lr must be a number (like 0.00025), got 'fast'"),
    ("num_envs: 4.5\n", "num_envs must be a whole number (like 4), got 4.5"),
    ("hidden_sizes: 64\n", "hidden_sizes must be a list (like (64, 64)), got 64"),
    ("- 1\n- 2\n", "must hold a mapping"),
    ("lr: [1\n", "is not valid YAML"),
    ("algorithm: trpo\nconfig: {lr: 1.0}\n", "is a run of 'trpo', not 'ppo'"),
])
def test_bad_config_file_is_one_line(tmp_path, capsys, content, message):
    file = tmp_path / "bad.yaml"
    file.write_text(content)
    assert main(["train", "ppo", "--config", str(file), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert main(["train", "ppo", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_reader_that_goes_away_stops_the_output_quietly():
    """`pgax list | head -1`: the pipe closes before pgax has printed; no traceback on stderr."""
    process = subprocess.Popen([sys.executable, "-m", "pgax", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # closed before pgax (still importing) prints anything
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err == b""


@pytest.mark.parametrize("argv, message", [
    (["train", "ppo", "--adam-eps", "1e-5"], "--adam-eps is now called --optimizer-eps"),
    (["train", "nac", "--ridge=0.1"], "--ridge is now called --cg-damping"),
    (["train", "vine", "--damping", "0.1"], "--damping is now called --cg-damping"),
    (["train", "ppo_kl", "--value-lr", "1e-3"], "--value-lr is now called --critic-lr"),
])
def test_a_renamed_flag_is_one_line_naming_the_new_one(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_files_with_renamed_keys_load_under_the_new_names(tmp_path):
    """A config file and a run folder's config.yaml written before the renames still load."""
    from pgax.algorithms import get_preset
    from pgax.cli import load_config_file
    from pgax.experiment import RunOptions, read_run

    preset = get_preset("nac")
    flat = tmp_path / "old.yaml"
    flat.write_text("value_lr: 0.002\nvalue-epochs: 3\nridge: 0.01\n")
    _, config = load_config_file(str(flat), preset, RunOptions(), preset.config_type())
    assert (config.critic_lr, config.critic_epochs, config.cg_damping) == (0.002, 3, 0.01)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(
        {"algorithm": "ppo", "run": {"env": "CartPole-v1", "steps": 1000}, "config": {"adam_eps": 1e-6, "lr": 1e-3}}))
    _, run, config = read_run(run_dir)
    assert config.optimizer_eps == 1e-6 and config.lr == 1e-3 and run.steps == 1000
