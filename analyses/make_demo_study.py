"""Regenerate the SIMULATED demo study in data/demo (seeded, deterministic).

    python analyses/make_demo_study.py [--out data/demo] [--seed 20261128]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.testing.simulate import DEMO_SEED, write_demo_study

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "demo")
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    args = parser.parse_args()
    print(f"wrote {write_demo_study(args.out, seed=args.seed)}")
