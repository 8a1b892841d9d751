"""Rerun every learning claim on disjoint seed sets and print the outcomes.

    .venv/bin/python -m tests.calibrate                       # every claim, offsets 0 100 200 300
    .venv/bin/python -m tests.calibrate -k ppo --offsets 0 500 # claims whose name contains "ppo"
    .venv/bin/python -m tests.calibrate --markdown out.md     # also write the table as markdown

Each claim runs on seeds offset + base + [0, num_seeds) for each offset (PGAX_TEST_SEED_OFFSET is
ignored here). For every score it prints the per-seed values, and for every offset whether the
claim held and by how many seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import pathlib
import sys
import time

import yaml

from tests.learning import LearningClaim

TESTS = pathlib.Path(__file__).parent


def all_claims() -> list[LearningClaim]:
    """Every LearningClaim at module level in tests/test_*.py (also inside dicts)."""
    claims = []
    for path in sorted(TESTS.glob("test_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        for value in vars(module).values():
            found = value.values() if isinstance(value, dict) else [value]
            claims += [c for c in found if isinstance(c, LearningClaim)]
    return claims


def markdown_table(rows) -> str:
    """One row per (claim, seed set): its conditions, each seed's scores, how many seeds pass."""
    lines = ["| claim | condition | seeds | per-seed scores | seeds passing |", "|---|---|---|---|---|"]
    for claim, seeds, passed, scores, _ in rows:
        shown = "<br>".join(f"{k}: " + ", ".join(f"{x:.3g}" for x in scores[k]) for k in claim.conditions)
        condition = "; ".join(f"{k} {op} {t:g}" for k, (op, t) in claim.conditions.items())
        lines.append(f"| {claim.name} | {condition} (≥ {claim.at_least} of {claim.num_seeds}) | "
                     f"{seeds[0]}-{seeds[-1]} | {shown} | {passed}/{claim.num_seeds} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default="", help="only claims whose name contains this text (comma-separated: any of them)")
    parser.add_argument("--offsets", type=int, nargs="+", default=[0, 100, 200, 300])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of a claim's measure_kwargs (e.g. steps=50000), to try budgets")
    parser.add_argument("--markdown", type=pathlib.Path, help="append the results as a markdown table")
    args = parser.parse_args(argv)
    os.environ.pop("PGAX_TEST_SEED_OFFSET", None)

    overrides = {}
    for item in args.set:
        key, _, text = item.partition("=")
        overrides[key] = yaml.safe_load(text)
    claims = [c for c in all_claims() if any(k in c.name for k in args.k.split(","))]
    claims = [dataclasses.replace(c, measure_kwargs={**c.measure_kwargs, **overrides}) for c in claims]
    if not claims:
        print(f"no learning claim matches {args.k!r}", file=sys.stderr)
        return 2
    rows, failed = [], 0
    for claim in claims:
        for offset in args.offsets:
            seeds = list(range(offset, offset + claim.num_seeds))
            start = time.perf_counter()
            scores = claim.run(seeds)
            seconds = time.perf_counter() - start
            passed = int(claim.passing(scores).sum())
            failed += passed < claim.at_least
            values = "; ".join(f"{k} " + " ".join(f"{x:.4g}" for x in v) for k, v in scores.items())
            line = (f"{claim.name}{' ' + str(overrides) if overrides else ''} | seeds {seeds[0]}-{seeds[-1]} | {passed}/{claim.num_seeds} pass "
                    f"(need {claim.at_least}) | {values} | {seconds:.1f} s")
            print(line, flush=True)
            rows.append((claim, seeds, passed, scores, seconds))
    if args.markdown:
        with open(args.markdown, "a") as out:
            out.write(markdown_table(rows) + "\n")
    print(f"{len(rows) - failed} of {len(rows)} (claim, seed set) runs hold", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
