"""The one gate through which every tokenizer, processor, config, weights and adapter is loaded.

Judges, the fluency and embedding detectors and the generation engines all load checkpoints
here and nowhere else, so the rules hold everywhere:

- **No code from a checkpoint.** ``trust_remote_code=False`` on every call, and a local folder
  whose ``config.json``, ``tokenizer_config.json``, ``processor_config.json``,
  ``preprocessor_config.json`` or ``adapter_config.json`` names custom classes (``auto_map``) is
  refused before transformers reads it.
- **Never an interactive prompt.** transformers asks "Do you wish to run the custom code? [y/N]"
  on stdin when ``trust_remote_code`` is left unset; the prompt's time-out is set to zero, which
  turns the question into an error (defence in depth: every call here also passes ``False``).
- **Safetensors only.** Weights and adapters load with ``use_safetensors=True``; a local folder
  with only pickled ``*.bin`` files is refused (unpickling runs code).

Every failure is an :class:`~judgekit.errors.InputError` with one line naming the option and source.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from judgekit.errors import InputError

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
# The key that makes transformers import Python from the checkpoint (peft's ``auto_mapping`` names a transformers
# class for AutoPeftModel, which judgekit does not use).
CODE_KEYS = ("auto_map",)
CONFIG_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json",
                "adapter_config.json", "generation_config.json")


def check_model_source(source: str, *, option: str, weights: bool = True) -> None:
    """Refuse, before any work, a model that cannot be loaded safely: one line naming what is wrong.

    A local directory needs a ``config.json``, ``*.safetensors`` weights (with ``weights``; a
    directory with only pickled ``*.bin`` weights is refused) and no custom code (``auto_map``).
    Anything else must be a hub id (``org/name``) whose config loads without custom code (from
    the cache or the hub); whether the hub copy has safetensors is checked when the weights load.

    Raises
    ------
    InputError
        The path does not exist, is not a model directory, holds only pickled weights, or names custom code.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"{option} {source}: no config.json in this directory (not a transformers model)")
        refuse_custom_code(path, option=option)
        if weights and not any(path.glob("*.safetensors")):
            pickled = sorted(p.name for p in path.glob("*.bin"))
            what = f"only pickled weights ({', '.join(pickled)})" if pickled else "no *.safetensors weights"
            raise InputError(f"{option} {source}: {what}; judgekit loads safetensors only (unpickling runs code)")
        return
    if path.exists():
        raise InputError(f"{option} {source}: not a directory")
    # "models/lm" is a missing local directory when ./models exists; "org/name" otherwise names a hub model
    if source.startswith((".", "/", "~")) or not _HUB_ID.fullmatch(source) or path.parent.name and path.parent.is_dir():
        raise InputError(f"{option} {source}: no such model directory")
    load_config(source, option=option, what="no such model directory, and no hub model to load")


def refuse_custom_code(directory: str | Path, *, option: str) -> None:
    """Refuse a local checkpoint folder whose JSON files name Python classes to import from it."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        return
    for name in CONFIG_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise InputError(f"{option} {directory}: {name} is not valid JSON") from None
        found = [key for key in CODE_KEYS if isinstance(content, dict) and content.get(key)]
        if found:
            raise InputError(f"{option} {directory}: {name} names custom code ({found[0]}); judgekit never runs "
                             "code from a checkpoint (trust_remote_code is always off)")


def _transformers() -> Any:
    """transformers, with its interactive "run the custom code? [y/N]" prompt turned into an error."""
    import transformers
    from transformers import dynamic_module_utils

    dynamic_module_utils.TIME_OUT_REMOTE_CODE = 0
    return transformers


@contextmanager
def _quiet_load() -> Iterator[None]:
    """Hold back transformers' log lines, Python warnings and progress bars while a checkpoint loads:
    a failure then prints its one line only; after a success the held-back warnings are logged."""
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as hf_logging

    held: list[str] = []

    class _Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record.getMessage())

    # each library adds its own stderr handler on first use: made now, so that it is the one taken off below
    hf_logging.get_verbosity()
    hub_logging.get_verbosity()
    loggers = [hf_logging.get_logger(), hub_logging.get_logger()]
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    holder, bars = _Hold(logging.WARNING), hf_logging.is_progress_bar_enabled()
    for logger in loggers:
        logger.handlers, logger.propagate = [holder], False
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
        if bars:
            hf_logging.enable_progress_bar()
    for message in [*held, *(str(w.message) for w in caught)]:
        log.warning("%s", message)


def _from_pretrained(auto_class: str, source: str, *, option: str, what: str, **options: Any) -> Any:
    """``transformers.<auto_class>.from_pretrained`` with no checkpoint code; failures become one line."""
    if options.pop("trust_remote_code", False):
        raise ValueError("the model gate never runs checkpoint code")
    if Path(source).expanduser().is_dir():
        refuse_custom_code(source, option=option)
    transformers = _transformers()
    try:
        with _quiet_load():
            return getattr(transformers, auto_class).from_pretrained(source, **options, trust_remote_code=False)
    except (OSError, ValueError, ImportError, KeyError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{option} {source}: {what}: {first}") from None


def load_config(source: str, *, option: str, revision: str | None = None, what: str = "cannot load the config") -> Any:
    """``AutoConfig`` of ``source`` without custom code."""
    return _from_pretrained("AutoConfig", source, option=option, what=what, revision=revision)


def load_tokenizer(source: str, *, option: str, revision: str | None = None) -> Any:
    """``AutoTokenizer`` of ``source`` without custom code."""
    return _from_pretrained("AutoTokenizer", source, option=option, what="cannot load the tokenizer", revision=revision)


def load_processor(source: str, *, option: str, revision: str | None = None) -> Any:
    """``AutoProcessor`` of ``source`` (image-text models) without custom code."""
    return _from_pretrained("AutoProcessor", source, option=option, what="cannot load the processor", revision=revision)


def load_model(auto_class: str, source: str, *, option: str, **options: Any) -> Any:
    """Weights of ``source`` through ``transformers.<auto_class>``: safetensors only, no custom code.

    ``options`` go to ``from_pretrained`` (``revision``, ``dtype``, ``device_map``, ...); they cannot
    turn on ``trust_remote_code`` or pickled weights.
    """
    if options.get("use_safetensors") is False:
        raise ValueError("the model gate loads safetensors only")
    return _from_pretrained(auto_class, source, option=option, what="cannot load the model",
                            **{**options, "use_safetensors": True})


def check_adapter_dir(directory: str, *, option: str) -> None:
    """Refuse a LoRA adapter folder that is missing, names custom code or has no safetensors weights."""
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise InputError(f"{option} {directory}: no such adapter directory")
    refuse_custom_code(path, option=option)
    if not (path / "adapter_model.safetensors").is_file():
        raise InputError(f"{option} {directory}: no adapter_model.safetensors; judgekit loads safetensors only "
                         "(unpickling runs code)")


def load_adapters(model: Any, adapters: dict[str, str], *, option: str) -> Any:
    """``model`` with peft LoRA adapters (name → directory) loaded from safetensors only."""
    for directory in adapters.values():
        check_adapter_dir(directory, option=option)
    from peft import PeftModel

    (first, first_dir), *rest = adapters.items()
    try:
        with _quiet_load():
            model = PeftModel.from_pretrained(model, first_dir, adapter_name=first)
            for name, directory in rest:
                model.load_adapter(directory, adapter_name=name)
    except (OSError, ValueError, KeyError) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{option} {', '.join(adapters.values())}: cannot load a LoRA adapter: {first_line}") from None
    return model
