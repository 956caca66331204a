"""Check the one-sample PPI++ against the reference implementation ``ppi_python`` (``ppi_py``) 0.2.3.

``ppi_python`` needs numba and llvmlite (about 210 MB), so it is not a test dependency: install it aside
(``pip install --target DIR ppi-python==0.2.3 numba llvmlite``) and run

    PYTHONPATH=DIR python analyses/ppi_python_check.py [--out analyses/results]

On 300 random data sets (binary and probabilistic verdicts, 10-200 labels, 10-2,000 unlabelled items, weights
0, 0.5, 1 and tuned): ``ppi_mean`` against ``ppi_mean_pointestimate``/``ppi_mean_ci``, and ``ppi_clustered``
with every item its own cluster and a fixed weight (its variance is ppi_py's times C/(C-1), undone here).
Writes ``labels_coverage/ppi_python_check.md``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from scipy.special import ndtri

from judgekit.stats.ppi import ppi_clustered, ppi_mean

OUT = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    try:
        from ppi_py import ppi_mean_ci, ppi_mean_pointestimate
    except ImportError:
        parser.exit(2, "error: ppi_py is not importable (see the docstring)\n")
    warnings.filterwarnings("ignore")
    worst_est = worst_se = worst_mean = 0.0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        n, N = int(rng.integers(10, 200)), int(rng.integers(10, 2000))
        p = rng.random()
        y = (rng.random(n) < p).astype(float)
        prob = rng.random() < 0.5
        f = np.clip(y + rng.normal(0, 0.4, n), 0, 1) if prob else np.where(rng.random(n) < 0.2, 1 - y, y)
        fu = np.clip((rng.random(N) < p) + rng.normal(0, 0.4, N), 0, 1) if prob else (rng.random(N) < p).astype(float)
        lam = [0.0, 0.5, 1.0, None][seed % 4]
        ref_est = float(np.ravel(ppi_mean_pointestimate(y, f, fu, lam=lam))[0])
        lo, hi = ppi_mean_ci(y, f, fu, alpha=0.05, lam=lam)
        ref_se = (float(np.ravel(hi)[0]) - float(np.ravel(lo)[0])) / 2 / ndtri(0.975)
        ours = ppi_mean(y, f, fu, lam=lam)
        worst_mean = max(worst_mean, abs(ours.estimate - ref_est), abs(ours.se - ref_se))
        if lam is not None:  # clustered, items as clusters, fixed weight: estimate equal, variance x C/(C-1)
            c = ppi_clustered(np.concatenate([y, np.full(N, np.nan)]), np.concatenate([f, fu]), np.arange(n + N), lam=lam,
                              pseudo_labels=False, max_jackknife_clusters=0)
            worst_est = max(worst_est, abs(c.estimate - np.clip(ref_est, 0, 1)))
            worst_se = max(worst_se, abs(c.se / np.sqrt((n + N) / (n + N - 1)) - ref_se))
    lines = ["# ppi_clustered and ppi_mean against ppi_python 0.2.3", "",
             "Made by `python analyses/ppi_python_check.py` (300 random data sets; see its docstring).", "",
             f"- ppi_mean vs ppi_py (estimate and standard error, tuned and fixed weights): max |difference| "
             f"{worst_mean:.2e}",
             f"- ppi_clustered, every item its own cluster, fixed weight: max |estimate difference| {worst_est:.2e}, "
             f"max |standard error difference| {worst_se:.2e} (after the C/(C-1) factor)", ""]
    folder = args.out / "labels_coverage"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ppi_python_check.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
