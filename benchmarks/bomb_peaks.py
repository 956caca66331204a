"""Peak memory of every bomb of the hostile corpus (tests/test_hostile_inputs.py, cases with ``bomb=True``), for
this tree and, side by side, for another checkout (``--baseline PATH``, e.g. the code before issue #35).

Each command runs in a fresh fork of a warm process (judgekit, pandas and pyarrow imported); the peak is the
fork's own ``ru_maxrss`` from ``os.wait4``. Children run under an address-space cap (``--cap-mb``, default 3072)
so that a bomb the baseline does not stop ends in a MemoryError instead of taking the machine; such a run is
reported with its exit code, its peak then being a lower bound.

    PYTHONPATH=$PWD python benchmarks/bomb_peaks.py [--baseline /work/main] [--cap-mb 3072]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from tests.test_hostile_inputs import CASES, REPO, ForkServer


def measure(root: Path, cap_mb: int) -> dict[str, tuple[int, float, float, str]]:
    server = ForkServer(root, address_cap_bytes=cap_mb << 20)
    results = {}
    try:
        for name, build in CASES.items():
            if getattr(build, "needs_model", False):
                continue
            with tempfile.TemporaryDirectory() as folder:
                world = Path(folder) / "world"
                world.mkdir()
                saved = dict(os.environ)
                case = build(world)
                if not case.bomb:
                    os.environ.clear()
                    os.environ.update(saved)
                    continue
                start = time.perf_counter()
                done, peak_mb = server.run(case.argv, Path(folder) / "stderr.txt")
                seconds = time.perf_counter() - start
                os.environ.clear()
                os.environ.update(saved)
                results[name] = (done.returncode, peak_mb, seconds, done.stderr.strip()[-110:])
    finally:
        server.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to measure side by side")
    parser.add_argument("--cap-mb", type=int, default=3072)
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; address-space cap per child {args.cap_mb} MiB")
    trees = {"this tree": REPO, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    for label, root in trees.items():
        print(f"\n{label} ({root})")
        print(f"{'case':<40} {'exit':>4} {'peak MB':>8} {'s':>6}  stderr (end)")
        for name, (code, peak, seconds, stderr) in measure(root, args.cap_mb).items():
            print(f"{name:<40} {code:>4} {peak:>8.0f} {seconds:>6.1f}  {stderr}")


if __name__ == "__main__":
    main()
