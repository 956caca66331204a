"""``judgekit run CONFIG.toml``: a whole study in one command.

prompt sets × models (base weights, fine-tunes, LoRA adapters, mitigations)
→ ``generate`` → ``judge`` → ``flag`` → ``stats`` → ``report``, each step through
the public functions of :mod:`judgekit.engine.steps`, each resumable (generation
and verdict caches; flags, statistics and the report are recomputed). The
whole config is checked before any step runs; paths are relative to the config
file. See ``analyses/example_study.toml`` for every key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgekit.errors import InputError, StepFailed
from judgekit.generate.spec import Decoding, ModelVariant

SECTIONS = {
    "study": {"out", "report", "prompts"},
    "generation": {"backend", "samples", "temperature", "top_p", "max_new_tokens", "seed", "system_prompt", "device",
                   "dtype", "token_budget", "tensor_parallel_size", "max_lora_rank", "base_urls", "api_key_env",
                   "concurrency", "request_timeout", "max_retries"},
    "judge": {"judges", "model_paths", "device", "dtype", "token_budget"},
    "flag": {"thresholds", "no_language"},
    "stats": {"n_boot", "seed", "ci_method", "bins", "incoherent"},
}
# The TOML type each key must have (checked before any step: `samples = "two"` is exit 2 naming the key).
KEY_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("samples", "max_new_tokens", "seed", "token_budget", "tensor_parallel_size", "max_lora_rank",
                     "concurrency", "max_retries", "n_boot", "bins"), (int,)),
    **dict.fromkeys(("temperature", "top_p", "request_timeout"), (int, float)),
    **dict.fromkeys(("out", "report", "backend", "system_prompt", "device", "dtype", "api_key_env", "ci_method",
                     "incoherent"), (str,)),
    **dict.fromkeys(("base_urls", "judges"), (list,)),
    **dict.fromkeys(("prompts",), (str, list)),
    **dict.fromkeys(("model_paths", "thresholds"), (dict,)),
    **dict.fromkeys(("no_language",), (bool,)),
}
MODEL_KEYS = {"model", "name", "base_model", "finetune_goal", "mitigation", "served_model", "include_base", "adapters"}
ADAPTER_KEYS = {"name", "path", "base_model", "finetune_goal", "mitigation"}
ENGINE_KEYS = ("device", "dtype", "token_budget", "tensor_parallel_size", "max_lora_rank")


@dataclass(frozen=True)
class ModelGroup:
    """One set of base weights and the variants generated from it in one engine."""

    model: str
    variants: list[ModelVariant]


@dataclass(frozen=True)
class RunConfig:
    path: Path
    out: Path
    report: Path
    prompts: list[Path]
    decoding: Decoding
    backend: str | None
    engine_options: dict[str, Any]
    groups: list[ModelGroup]
    judges: list[str]
    judge_options: dict[str, Any]
    flag_options: dict[str, Any]
    stats: Any  # judgekit.analysis.StatsSettings


def _check_types(raw: dict[str, Any], fail) -> None:
    """Every key of every section has its TOML type (a bool is not a number)."""
    for section in SECTIONS:
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise fail(f"[{section}] must be a table")
        for key, value in table.items():
            wanted = KEY_TYPES.get(key)
            if wanted is None:
                continue
            if isinstance(value, bool) and bool not in wanted or not isinstance(value, wanted):
                names = " or ".join({int: "an integer", float: "a number", str: "a string", list: "a list",
                                     dict: "a table", bool: "true or false"}[t] for t in wanted)
                raise fail(f"[{section}] {key} must be {names}, got {value!r}")


def _output_path(value: str, here: Path, key: str, fail) -> Path:
    """``value`` relative to the config; an output that would be /, the home folder, or a folder holding the config
    (``../../..``) is refused."""
    path = here / value
    target = path.resolve()
    if target == Path(target.anchor) or target == Path.home().resolve() or target in (here.resolve(), *here.resolve().parents):
        raise fail(f"[study] {key} = {value!r} resolves to {target}, which holds the config or is / or the home "
                   "folder; name a folder of its own")
    return path


def load_config(path: Path) -> RunConfig:
    """Read and check a run config; every problem is an InputError naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", file=path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"not a valid TOML file: {err}", file=path) from None
    fail = lambda message: InputError(message, file=path)  # noqa: E731
    unknown = sorted(set(raw) - set(SECTIONS) - {"models"})
    if unknown:
        raise fail(f"unknown section [{unknown[0]}]; sections are {sorted([*SECTIONS, 'models'])}")
    for section, keys in SECTIONS.items():
        extra = sorted(set(raw.get(section, {})) - keys)
        if extra:
            raise fail(f"unknown key {extra[0]!r} in [{section}]; allowed: {sorted(keys)}")
    _check_types(raw, fail)
    here = path.parent
    study = raw.get("study", {})
    for key in ("out", "report", "prompts"):
        if key not in study:
            raise fail(f"[study] needs {key!r}")
    prompts = study["prompts"] if isinstance(study["prompts"], list) else [study["prompts"]]
    generation = dict(raw.get("generation", {}))
    try:
        decoding = Decoding(samples=generation.pop("samples", 1), temperature=float(generation.pop("temperature", 0.0)),
                            top_p=float(generation.pop("top_p", 1.0)), max_new_tokens=generation.pop("max_new_tokens", 512),
                            seed=generation.pop("seed", 0), system_prompt=_system_prompt(generation.pop("system_prompt", "none")))
    except InputError as err:
        raise fail(f"[generation]: {err.message}") from None
    backend = generation.pop("backend", None)
    engine_options = {k: generation.get(k) for k in ENGINE_KEYS}
    if backend == "http":
        engine_options.update(_http_options(generation, decoding.seed, fail))
    groups = _model_groups(raw.get("models"), here, fail)
    judge = raw.get("judge", {})
    judges = judge.get("judges", [])
    if not isinstance(judges, list) or not judges:
        raise fail("[judge] needs judges = [\"ID\", ...] (see `judgekit list`)")
    stats = raw.get("stats", {})
    from judgekit.analysis import StatsSettings

    try:
        settings = StatsSettings(n_boot=stats.get("n_boot", 1000), seed=stats.get("seed", 0),
                                 ci_method=stats.get("ci_method", "bca"), n_bins=stats.get("bins", 10),
                                 incoherent=stats.get("incoherent", "include"))
    except ValueError as err:
        raise fail(f"[stats]: {err}") from None
    if settings.seed < 0 or settings.n_bins < 1:
        raise fail(f"[stats]: seed must be >= 0 and bins >= 1, got seed {settings.seed}, bins {settings.n_bins}")
    return RunConfig(path=path, out=_output_path(study["out"], here, "out", fail),
                     report=_output_path(study["report"], here, "report", fail), prompts=[here / p for p in prompts],
                     decoding=decoding, backend=backend, engine_options=engine_options, groups=groups, judges=judges,
                     judge_options={k: v for k, v in judge.items() if k != "judges"}, flag_options=raw.get("flag", {}),
                     stats=settings)


def _system_prompt(value: Any) -> str | None:
    return None if value == "none" else str(value)


def _http_options(generation: dict[str, Any], seed: int, fail) -> dict[str, Any]:
    from judgekit.judges.http_judge import HttpSettings

    urls = generation.get("base_urls") or []
    if not urls:
        raise fail("[generation] backend = \"http\" needs base_urls = [\"http://...\", ...]")
    settings = HttpSettings(base_url=urls[0], api="vllm", api_key_env=generation.get("api_key_env"),
                            concurrency=int(generation.get("concurrency", 16)),
                            timeout_s=float(generation.get("request_timeout", 600.0)),
                            max_retries=int(generation.get("max_retries", 8)), seed=seed)
    return {"base_urls": urls, "http": settings}


def _model_groups(entries: Any, here: Path, fail) -> list[ModelGroup]:
    if not isinstance(entries, list) or not entries:
        raise fail("needs at least one [[models]] entry with model = \"DIR_OR_ID\"")
    groups, names = [], set()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise fail(f"[[models]] entry {number} must be a table")
        wrong = next((k for k, v in entry.items() if not isinstance(v, bool if k == "include_base" else
                                                                     list if k == "adapters" else str)), None)
        if wrong is not None:
            raise fail(f"[[models]] entry {number}: {wrong} must be "
                       f"{'true or false' if wrong == 'include_base' else 'a list' if wrong == 'adapters' else 'a string'}, "
                       f"got {entry[wrong]!r}")
        if any(not isinstance(a, dict) or not all(isinstance(v, str) for v in a.values()) for a in entry.get("adapters", [])):
            raise fail(f"[[models]] entry {number}: each adapter is a table of strings (name, path, ...)")
        extra = sorted(set(entry) - MODEL_KEYS)
        if extra or "model" not in entry:
            raise fail(f"[[models]] entry {number}: " + (f"unknown key {extra[0]!r}; allowed: {sorted(MODEL_KEYS)}"
                                                         if extra else "needs model = \"DIR_OR_ID\""))
        model = _local(entry["model"], here)
        base_name = entry.get("name") or Path(str(entry["model"]).rstrip("/")).name
        common = {k: entry.get(k) for k in ("finetune_goal", "mitigation")}
        adapters = entry.get("adapters", [])
        if not adapters:
            variants = [ModelVariant(base_name, entry.get("base_model"), served_model=entry.get("served_model"), **common)]
        else:
            variants = [ModelVariant(base_name, served_model=entry.get("served_model"))] if entry.get("include_base", True) else []
            for adapter in adapters:
                extra = sorted(set(adapter) - ADAPTER_KEYS)
                if extra or not {"name", "path"} <= set(adapter):
                    raise fail(f"[[models]] entry {number}: each adapter needs name and path (allowed keys: {sorted(ADAPTER_KEYS)})")
                variants.append(ModelVariant(adapter["name"], adapter.get("base_model") or entry.get("base_model") or base_name,
                                             adapter.get("finetune_goal", common["finetune_goal"]),
                                             adapter.get("mitigation", common["mitigation"]), _local(adapter["path"], here),
                                             adapter["name"]))
        for variant in variants:
            if variant.name in names:
                raise fail(f"model name {variant.name!r} appears twice; every model needs its own name")
            names.add(variant.name)
        groups.append(ModelGroup(model, variants))
    return groups


def _local(value: str, here: Path) -> str:
    """A path relative to the config when it exists there; otherwise the text as given (a hub id)."""
    candidate = here / value
    return str(candidate) if candidate.exists() else str(value)


def run_config(path: Path, *, progress: bool = True) -> list[str]:
    """Run every step of the config; return one line per step for the user."""
    from judgekit.judges.build import JudgeOptions
    from judgekit.registry import resolve_judge
    from judgekit.guards.model_gate import check_model_source
    from judgekit.store.outdir import check_output_dir, check_study_out

    config = load_config(path)
    options = JudgeOptions(model_paths=dict(config.judge_options.get("model_paths", {})),
                           device=config.judge_options.get("device"), dtype=config.judge_options.get("dtype"),
                           token_budget=config.judge_options.get("token_budget"))
    # Everything a later step needs is checked before generation spends hours: judges, their model folders, --out.
    for name in config.judges:
        resolve_judge(name, options)
    for judge_id, source in options.model_paths.items():
        check_model_source(source, option=f"[judge] model_paths {judge_id}")
    check_study_out(config.out, option="[study] out")
    check_output_dir(config.report, kind="report", studies=[config.out])
    new_study = not config.out.exists()
    lines = [f"study: {config.out.resolve()}{' (new)' if new_study else ''}; report: {config.report.resolve()}"]
    return lines + _run_steps(config, options, progress=progress)


def _run_steps(config: RunConfig, options, *, progress: bool) -> list[str]:
    from judgekit.engine import steps

    settings = config.stats
    lines = []
    for group in config.groups:
        for s in steps.generate_step(config.prompts, config.out, model=group.model, variants=group.variants,
                                        decoding=config.decoding, backend=config.backend,
                                        engine_options=config.engine_options, progress=progress):
            lines.append(f"generate {s.model}: {s.n_generated} generated, {s.n_from_cache} from cache, "
                         f"{s.n_already_done} already done, {s.n_failed} failed")
            if s.n_failed:
                raise StepFailed(f"{s.n_failed} generations of {s.model} failed ({s.first_error}); the others are "
                                 "saved: rerun the same command to retry them before judging")
    for s in steps.judge_step(config.out, config.judges, progress=progress, options=options):
        lines.append(f"judge {s.judge_id}: judged {s.n_judged}, already done {s.n_skipped}, statuses {s.status_counts}")
    flags = steps.flag_step(config.out, thresholds=config.flag_options.get("thresholds"),
                               language=not config.flag_options.get("no_language", False))
    combined = flags[flags["detector"] == "incoherent"]
    lines.append(f"flag: {int(combined['flagged'].sum())} of {len(combined)} responses incoherent")
    report = steps.report_step(config.out, config.report, stats_dir=None, settings=settings)
    lines.append(f"report: {report}")
    return lines
