"""`pgax compare`: trains each algorithm, prints the table, writes the PNG and JSON."""

import json

import pytest

from pgax.cli import format_comparison, main


def test_compare_writes_table_png_and_json(tmp_path, capsys):
    code = main(["compare", "ppo", "--env", "CartPole-v1", "--steps", "2048", "--seeds", "2", "--eval-episodes", "3",
                 "--out", str(tmp_path), "--no-progress", "--chunk-iterations", "2"])
    assert code == 0
    out = capsys.readouterr().out
    (folder,) = list(tmp_path.iterdir())
    assert folder.name.endswith("-compare-CartPole-v1")
    assert {p.name for p in folder.iterdir()} >= {"comparison.png", "comparison.json", "ppo"}
    result = json.loads((folder / "comparison.json").read_text())
    (row,) = result["rows"]
    assert row["algorithm"] == "ppo" and row["seeds"] == 2 and len(row["final_return_per_seed"]) == 2
    assert row["ci95_low"] <= row["final_return_mean"] <= row["ci95_high"]
    per_seed = row["final_return_per_seed"]
    assert min(per_seed) <= row["ci95_low"] and row["ci95_high"] <= max(per_seed)  # means of resamples
    assert "95% CI" in out and "ppo" in out.splitlines()[-3]


def test_table_formatting_is_exact():
    rows = [{"algorithm": "ppo", "final_return_mean": 500.0, "ci95_low": 499.5, "ci95_high": 500.0,
             "steps_per_second": 123456.0, "wall_seconds": 12.34},
            {"algorithm": "reinforce", "final_return_mean": None, "ci95_low": None, "ci95_high": None,
             "steps_per_second": float("nan"), "wall_seconds": 1.0}]
    lines = format_comparison(rows, "CartPole-v1", 3, 100).splitlines()
    assert lines[3] == "ppo                         500.0       [499.5, 500.0]    123,456     12.3"
    assert lines[4] == "reinforce                       -                    -          -      1.0"


@pytest.mark.parametrize("argv, message", [
    (["compare"], "name the algorithms"),
    (["compare", "ppo,ppo"], "each algorithm once"),
    (["compare", "ppo,nope"], "unknown algorithm 'nope'"),
    (["compare", "ppo", "--config", "trpo=x.yaml"], "--config for compare takes ALGO=FILE.yaml"),
    (["compare", "ppo", "--steps", "0"], "--steps must be a positive integer"),
])
def test_bad_compare_input_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
