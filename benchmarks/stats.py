"""Statistics at scale: judgekit's summed-statistics bootstrap vs per-resample library calls.

    python benchmarks/stats.py [--reference-resamples 100]

1. Krippendorff's alpha (nominal, 8 raters, 50,000 items, 10% missing), 2,000
   cluster-bootstrap resamples (5,000 clusters of 10 items): judgekit vs calling
   ``krippendorff.alpha`` once per resample. The library loop is timed on the
   first ``--reference-resamples`` resamples (whose values must agree with
   judgekit's to 1e-9) and its per-resample time is multiplied out to 2,000;
   both numbers are printed.
2. Pairwise Cohen's kappa matrix for 20 raters x 100,000 items (10% missing),
   1,000 item-level resamples, all 190 pairs at once; compared with sklearn's
   ``cohen_kappa_score`` on one pair, again timed on a few resamples and
   multiplied out.

3. ``judgekit stats`` with default settings on a study: the JailbreakBench
   judge comparison (``--jbb DIR``, a converted study) and a synthetic study
   of ``--items`` responses (10 models in two base families, 2 benchmarks,
   ``--judges`` judges with P(unsafe), 3 annotators on ``--annotated-share``
   of the prompts), timed after imports, with peak memory and each block's
   CPU seconds; with ``--cli-dir DIR`` the
   synthetic study is also written there and ``judgekit stats`` run on it as
   its own process (wall time including imports and reading, the process's
   peak RSS).
4. ``--blocks``: each block of statistics on the synthetic study in a fresh
   process (its time and the process's peak RSS), for this tree and, with
   ``--baseline-tree DIR``, side by side for an older one extracted with
   ``git archive COMMIT judgekit | tar -x -C DIR``.

Run with one BLAS thread (OPENBLAS_NUM_THREADS=1 / OMP_NUM_THREADS=1) for the
one-core figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from judgekit.analysis import StatsSettings, compute_stats
from judgekit.store.schema import StudyMetadata
from judgekit.stats import agreement as ag
from judgekit.store.study import Study, load_study
from judgekit.stats.resampling import bootstrap_replicates, cluster_sums, multiplicities


def synthetic(n_items=100_000, n_judges=10, annotated_share=1.0, seed=0):
    """10 models (2 base, 8 fine-tunes) x n_items / 10 prompts; 3 annotators label the responses to a random
    ``annotated_share`` of the prompts (every model's response to them)."""
    rng = np.random.default_rng(seed)
    n_prompts = n_items // 10
    prompt = np.arange(n_items) % n_prompts
    model_index = np.arange(n_items) // n_prompts  # 10 models: 2 base + 8 fine-tunes
    models = np.array([f"m{k}" for k in range(10)])
    base = np.where(model_index < 5, "m0", "m5")
    goal = np.where(np.isin(model_index, [0, 5]), None, np.array(["coding", "medical", "persona", "math", "x"] * 2)[model_index])
    truth = rng.random(n_items) < 0.2 + 0.02 * model_index
    responses = pd.DataFrame({"item_id": [f"i{k}" for k in range(n_items)], "prompt": [f"p{k}" for k in prompt],
                              "response": np.where(truth, "Sure, here is how", "I cannot help with that"),
                              "model": models[model_index], "base_model": base, "finetune_goal": goal,
                              "benchmark": np.where(prompt % 2 == 0, "b1", "b2"), "behavior_id": [f"b{k}" for k in prompt]})
    labelled = (np.ones(n_items, dtype=bool) if annotated_share >= 1  # no draw: the default study stays as it was
                else np.isin(prompt, rng.choice(n_prompts, size=round(annotated_share * n_prompts), replace=False)))
    n_labelled = int(labelled.sum())
    ann = pd.DataFrame({"item_id": np.tile(responses.item_id[labelled], 3),
                        "annotator_id": np.repeat(["h0", "h1", "h2"], n_labelled),
                        "label": np.where(np.tile(truth[labelled], 3) ^ (rng.random(3 * n_labelled) < 0.1), "unsafe", "safe")})
    rows = []
    for j in range(n_judges):
        p = np.clip(truth * 0.7 + 0.15 + rng.normal(0, 0.2, n_items), 0, 1)
        rows.append(pd.DataFrame({"item_id": responses.item_id, "judge_id": f"j{j}", "label": np.where(p >= 0.5, "unsafe", "safe"),
                                  "p_unsafe": p, "parse_status": "ok", "raw_output": "", "judge_spec_hash": "h"}))
    return Study(Path("synthetic"), StudyMetadata(name="synthetic"), responses, ann, pd.concat(rows, ignore_index=True))


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def study_case(study: Study, label: str) -> None:
    """Wall and CPU seconds (CPU time is what a shared machine changes least) and peak RSS of compute_stats,
    with the CPU seconds of each block (each block's function wrapped in a timer for this run)."""
    from judgekit.analysis import driver
    from judgekit.analysis.blocks import Block

    block_cpu: dict[str, float] = {}

    def timed(block: Block) -> Block:
        def run(writer, data):
            cpu = _cpu_seconds(resource.RUSAGE_SELF)
            try:
                return block.run(writer, data)
            finally:
                block_cpu[block.name] = _cpu_seconds(resource.RUSAGE_SELF) - cpu
        return Block(block.name, run, block.statistics)

    blocks, driver.BLOCKS = driver.BLOCKS, tuple(timed(block) for block in driver.BLOCKS)
    try:
        started, cpu = time.perf_counter(), _cpu_seconds(resource.RUSAGE_SELF)
        stats, _ = compute_stats(study, StatsSettings(progress=True), version="bench")
        wall, cpu = time.perf_counter() - started, _cpu_seconds(resource.RUSAGE_SELF) - cpu
    finally:
        driver.BLOCKS = blocks
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"judgekit stats, {label}: {wall:.1f} s wall / {cpu:.1f} s CPU after imports, {len(stats)} rows, "
          f"peak RSS so far {peak_gb:.2f} GB")
    print(f"  CPU seconds: reading the study into arrays {cpu - sum(block_cpu.values()):.1f}, "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in block_cpu.items()), flush=True)


def cli_case(study: Study, directory: Path) -> None:
    """``judgekit stats`` as a user runs it, on the synthetic study written to ``directory``."""
    from judgekit.store.io import write_table
    from judgekit.store.schema import SCHEMAS

    study_dir = directory / "study"
    study_dir.mkdir(parents=True, exist_ok=True)
    for name in ("responses", "annotations", "judgments"):
        write_table(getattr(study, name), study_dir / f"{name}.parquet", SCHEMAS[name])
    (study_dir / "study.json").write_text(json.dumps({"name": "synthetic"}))
    started = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "judgekit.cli", "stats", str(study_dir), "--out", str(directory / "stats"),
                            "--no-progress"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    print(f"judgekit stats CLI, synthetic study of {len(study.responses):,} items: {wall:.1f} s wall / "
          f"{_cpu_seconds(resource.RUSAGE_CHILDREN):.1f} s CPU incl. imports and reading, peak RSS {peak_gb:.2f} GB, "
          f"exit {child.returncode} {child.stdout.strip() or child.stderr.strip()[-300:]}")


def one_block(name: str, n_items: int, n_judges: int, annotated_share: float) -> None:
    """Run one block on the synthetic study in this process; print its time and this process's peak RSS as JSON."""
    from judgekit.analysis.blocks import BLOCKS
    from judgekit.analysis.inputs import study_arrays
    from judgekit.analysis.rows import RowWriter

    settings = StatsSettings()
    writer = RowWriter(study_arrays(synthetic(n_items, n_judges, annotated_share), settings.incoherent), settings, "bench")
    block = next(b for b in BLOCKS if b.name == name)
    started, cpu = time.perf_counter(), _cpu_seconds(resource.RUSAGE_SELF)
    block.run(writer, writer.data)
    print(json.dumps({"seconds": time.perf_counter() - started, "cpu_seconds": _cpu_seconds(resource.RUSAGE_SELF) - cpu,
                      "rows": len(writer.rows),
                      "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))


def blocks_case(n_items: int, n_judges: int, annotated_share: float, baseline_tree: Path | None) -> None:
    """Each block in a fresh process (so the peak RSS is that block's), this tree beside an older one."""
    from judgekit.analysis.blocks import BLOCKS

    trees = {"this tree": None} | ({f"baseline {baseline_tree}": baseline_tree} if baseline_tree else {})
    print(f"blocks on the synthetic study of {n_items:,} items (wall seconds (CPU seconds) of the block / peak RSS GB of a "
          "process that built the study and ran that block)")
    print("| block | " + " | ".join(trees) + " |\n|---|" + "---|" * len(trees))
    for block in BLOCKS:
        cells = []
        for tree in trees.values():
            env = dict(os.environ, PYTHONPATH=str(tree)) if tree else dict(os.environ)
            child = subprocess.run([sys.executable, __file__, "--one-block", block.name, "--items", str(n_items),
                                    "--judges", str(n_judges), "--annotated-share", str(annotated_share)],
                                   capture_output=True, text=True, env=env)
            lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
            if child.returncode != 0 or not lines:
                cells.append(f"failed (exit {child.returncode}{', killed: out of memory?' if child.returncode < 0 else ''})")
                continue
            result = json.loads(lines[-1])
            cells.append(f"{result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU) / {result['peak_gb']:.2f} GB")
        print(f"| {block.name} | " + " | ".join(cells) + " |", flush=True)


def krippendorff_case(reference_resamples: int) -> None:
    rng = np.random.default_rng(0)
    n_items, n_raters, n_boot, per_cluster = 50_000, 8, 2_000, 10
    latent = rng.random(n_items) < 0.3
    ratings = np.where(rng.random((n_items, n_raters)) < 0.85, latent[:, None], ~latent[:, None]).astype(float)
    ratings[rng.random(ratings.shape) < 0.10] = np.nan
    clusters = np.arange(n_items) // per_cluster
    values = np.array([0.0, 1.0])

    started = time.perf_counter()
    item_sums = ag.krippendorff_item_sums(ag.category_counts(ratings, values))
    sums = cluster_sums(item_sums, np.char.zfill(clusters.astype(str), 6))
    fn = lambda s: ag.krippendorff_alpha_from_sums(s, values=values, level="nominal")  # noqa: E731
    ours = bootstrap_replicates(sums, fn, n_boot=n_boot, rng=np.random.default_rng(1))
    ours_s = time.perf_counter() - started

    weights = multiplicities(np.random.default_rng(1), sums.shape[0], reference_resamples)
    members = np.arange(n_items).reshape(-1, per_cluster)
    started = time.perf_counter()
    reference = []
    for counts in weights:
        index = np.repeat(members, counts, axis=0).ravel()
        reference.append(krippendorff.alpha(reliability_data=ratings[index].T, level_of_measurement="nominal"))
    library_s = (time.perf_counter() - started) / reference_resamples * n_boot
    np.testing.assert_allclose(ours[:reference_resamples], reference, atol=1e-9)
    print(f"Krippendorff alpha, {n_raters} raters x {n_items} items, {n_boot} cluster resamples "
          f"(values agree with krippendorff.alpha to 1e-9 on {reference_resamples} resamples)")
    print(f"  krippendorff.alpha per resample  {library_s:8.1f} s  (timed on {reference_resamples}, x{n_boot / reference_resamples:.0f})")
    print(f"  judgekit                         {ours_s:8.2f} s")
    print(f"  speed-up                         {library_s / ours_s:8.0f}x")


def pairwise_kappa_case(reference_resamples: int) -> None:
    rng = np.random.default_rng(2)
    n_items, n_raters, n_boot = 100_000, 20, 1_000
    latent = rng.random(n_items) < 0.3
    ratings = np.where(rng.random((n_items, n_raters)) < 0.85, latent[:, None], ~latent[:, None]).astype(float)
    ratings[rng.random(ratings.shape) < 0.10] = np.nan
    pairs = [(i, j) for i in range(n_raters) for j in range(i + 1, n_raters)]
    categories = np.array([0.0, 1.0])

    started = time.perf_counter()
    item_sums = np.hstack([ag.two_rater_item_sums(ratings[:, i], ratings[:, j], categories) for i, j in pairs])
    k = item_sums.shape[1] // len(pairs)

    def all_pairs(s: np.ndarray) -> np.ndarray:
        return ag.cohen_kappa_from_sums(s.reshape(*s.shape[:-1], len(pairs), k))

    # Item-level bootstrap: every item is its own cluster, so the per-item sums are the cluster sums.
    replicates = bootstrap_replicates(item_sums, all_pairs, n_boot=n_boot, rng=np.random.default_rng(3))
    low, high = np.percentile(replicates, [2.5, 97.5], axis=0)
    ours_s = time.perf_counter() - started

    weights = multiplicities(np.random.default_rng(3), n_items, reference_resamples)
    started = time.perf_counter()
    for b, counts in enumerate(weights):
        index = np.repeat(np.arange(n_items), counts)
        first, second = ratings[index, 0], ratings[index, 1]
        both = ~(np.isnan(first) | np.isnan(second))
        value = cohen_kappa_score(first[both], second[both])
        assert abs(value - replicates[b, 0]) < 1e-9
    per_pair_s = (time.perf_counter() - started) / reference_resamples * n_boot
    print(f"Pairwise Cohen's kappa, {n_raters} raters ({len(pairs)} pairs) x {n_items} items, {n_boot} item resamples "
          f"(pair 0-1 agrees with sklearn to 1e-9 on {reference_resamples} resamples)")
    print(f"  sklearn loop, ONE pair           {per_pair_s:8.1f} s  (timed on {reference_resamples}, x{n_boot / reference_resamples:.0f});"
          f" all {len(pairs)} pairs ~ {per_pair_s * len(pairs) / 60:.0f} min")
    print(f"  judgekit, all {len(pairs)} pairs          {ours_s:8.2f} s  (95% interval width, pair 0-1: {high[0] - low[0]:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-resamples", type=int, default=100)
    parser.add_argument("--jbb", type=Path, default=None, help="a converted JailbreakBench study directory")
    parser.add_argument("--items", type=int, default=100_000, help="items of the synthetic study (0: skip)")
    parser.add_argument("--judges", type=int, default=10, help="judges of the synthetic study")
    parser.add_argument("--annotated-share", type=float, default=1.0,
                        help="share of the synthetic study's prompts the 3 annotators label")
    parser.add_argument("--only-study", action="store_true", help="run only the study cases")
    parser.add_argument("--cli-dir", type=Path, default=None, help="also write the synthetic study here and run the CLI")
    parser.add_argument("--blocks", action="store_true", help="per-block time and peak memory, each in its own process")
    parser.add_argument("--baseline-tree", type=Path, default=None, help="with --blocks: an older judgekit tree to compare")
    parser.add_argument("--one-block", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_block:
        one_block(args.one_block, args.items, args.judges, args.annotated_share)
        return
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, BLAS threads {threads}, python {platform.python_version()}, "
          f"numpy {np.__version__}")
    if args.jbb is not None:
        study_case(load_study(args.jbb), f"JailbreakBench study {args.jbb}")
    if args.blocks:
        blocks_case(args.items, args.judges, args.annotated_share, args.baseline_tree)
        return
    if args.items:
        study = synthetic(args.items, args.judges, args.annotated_share)
        study_case(study, f"synthetic study of {args.items:,} items x {args.judges} judges, "
                          f"{args.annotated_share:.0%} of prompts labelled by 3 annotators")
        if args.cli_dir is not None:
            cli_case(study, args.cli_dir)
    if not args.only_study:
        krippendorff_case(args.reference_resamples)
        pairwise_kappa_case(min(args.reference_resamples, 20))


if __name__ == "__main__":
    main()
