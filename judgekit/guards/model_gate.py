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
- **Loaded means loaded.** After a load every weight the architecture expects came from the
  checkpoint: a missing tensor (transformers would initialise it at random) or one the checkpoint
  holds in the model's own namespace that no module takes is refused, naming the folder and the
  first such tensor. Allowed: buffers recomputed at load (:data:`RECOMPUTED`), tied weights whose
  source loaded, heads of other tasks a checkpoint carries (:data:`OTHER_TASK_HEADS`), and what a
  caller names (the embedding model's unused pooler).
- **A model folder owns its files.** A symlink in it must resolve inside it (or, for a hub cache
  snapshot, inside that repository's cache folder) to a regular file, and each ``*.safetensors``
  header is read with a size limit and checked against the file before transformers or vLLM opens it.

Every failure is an :class:`~judgekit.errors.InputError` with one line naming the option and source.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import struct
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
# Suffixes of buffers a model computes at load rather than reads (rotary frequencies, position ids).
RECOMPUTED = (".inv_freq", "position_ids")
# Heads a checkpoint may carry for a task other than the one it is loaded for (an embedding model loaded with
# AutoModel from a causal LM or a BERT with its masked-LM head): left unused, the loaded model is complete.
OTHER_TASK_HEADS = ("lm_head.", "pooler.", "cls.", "score.", "classifier.", "qa_outputs.")
MAX_SAFETENSORS_HEADER = 100 << 20  # the safetensors format's own limit on the JSON header
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
        check_folder_links(path, option=option)
        refuse_custom_code(path, option=option)
        if weights and not any(path.glob("*.safetensors")):
            pickled = sorted(p.name for p in path.glob("*.bin"))
            what = f"only pickled weights ({', '.join(pickled)})" if pickled else "no *.safetensors weights"
            raise InputError(f"{option} {source}: {what}; judgekit loads safetensors only (unpickling runs code)")
        if weights:
            for weights_file in sorted(path.glob("*.safetensors")):
                check_safetensors_header(weights_file, option=option)
        return
    if path.exists():
        raise InputError(f"{option} {source}: not a directory")
    # "models/lm" is a missing local directory when ./models exists; "org/name" otherwise names a hub model
    if source.startswith((".", "/", "~")) or not _HUB_ID.fullmatch(source) or path.parent.name and path.parent.is_dir():
        raise InputError(f"{option} {source}: no such model directory")
    load_config(source, option=option, what="no such model directory, and no hub model to load")


def check_folder_links(directory: Path, *, option: str) -> None:
    """Every symlink in a model folder resolves inside it (inside the repository's cache folder for a hub
    snapshot, whose files link to ``../../blobs``) and to a regular file: a link to ``/dev/urandom`` or to a
    file of another folder is refused, naming it."""
    directory = Path(directory).expanduser()
    root = directory.resolve()
    if root.parent.name == "snapshots":
        root = root.parent.parent
    for path in sorted(directory.iterdir()):
        if not path.is_symlink():
            continue
        target = path.resolve()
        if target != root and root not in target.parents:
            raise InputError(f"{option} {directory}: {path.name} is a link to {target}, outside the model folder")
        if path.exists() and not target.is_file() and not target.is_dir():
            raise InputError(f"{option} {directory}: {path.name} is a link to {target}, which is not a regular file")


def check_safetensors_header(path: Path, *, option: str) -> None:
    """A ``*.safetensors`` file's header, read with a size limit: a JSON object of tensors (at least one) whose
    byte ranges lie inside the file (a header declaring 2**62 bytes is refused here, not deep in the loader)."""
    where = f"{option} {path.parent}: {path.name}"
    try:
        with open(path, "rb") as stream:
            status = os.fstat(stream.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise InputError(f"{where} is not a regular file")
            prefix = stream.read(8)
            if len(prefix) < 8:
                raise InputError(f"{where} is too short to be safetensors ({len(prefix)} bytes)")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(MAX_SAFETENSORS_HEADER, status.st_size - 8):
                raise InputError(f"{where} declares a {length}-byte header, more than the file or the "
                                 f"{MAX_SAFETENSORS_HEADER >> 20} MiB limit holds")
            header = json.loads(stream.read(length))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise InputError(f"{where} has no readable safetensors header ({type(err).__name__})") from None
    if not isinstance(header, dict):
        raise InputError(f"{where} has no readable safetensors header (not a JSON object)")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if not tensors:
        raise InputError(f"{where} holds no tensors; the model's weights would all be random")
    data_bytes = status.st_size - 8 - length
    for name, entry in tensors.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise InputError(f"{where}: tensor {name} declares bytes {offsets} outside the file's {data_bytes} "
                             "data bytes")


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
        found = _code_key(content)
        if found:
            raise InputError(f"{option} {directory}: {name} names custom code ({found}); judgekit never runs "
                             "code from a checkpoint (trust_remote_code is always off)")


def _code_key(content: Any) -> str | None:
    """The path of the first code key at any depth (``auto_map`` inside ``text_config`` counts), walked
    without recursion."""
    stack: list[tuple[str, Any]] = [("", content)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key, inner in value.items():
                path = f"{where}.{key}" if where else str(key)
                if key in CODE_KEYS and inner:
                    return path
                stack.append((path, inner))
        elif isinstance(value, list):
            stack.extend((f"{where}[{k}]", inner) for k, inner in enumerate(value))
    return None


def _transformers() -> Any:
    """transformers, with its interactive "run the custom code? [y/N]" prompt turned into an error."""
    import transformers
    from transformers import dynamic_module_utils

    dynamic_module_utils.TIME_OUT_REMOTE_CODE = 0
    _bound_chat_templates()
    return transformers


MAX_TEMPLATE_VALUE = 16 << 20  # items of one string or list a chat template may build with + or *


def _bound_chat_templates() -> None:
    """Chat templates render in a sandbox whose ``+``, ``*`` and ``**`` cannot build a value over
    :data:`MAX_TEMPLATE_VALUE` items (``'x' * 10**10`` would allocate 10 GB before any time limit fires)."""
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from transformers.utils import chat_template_utils

    if getattr(chat_template_utils.ImmutableSandboxedEnvironment, "judgekit_bounded", False):
        return

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        judgekit_bounded = True
        intercepted_binops = frozenset({"+", "*", "**"})

        def call_binop(self, context, operator, left, right):  # noqa: ANN001 - jinja's signature
            sized = [v for v in (left, right) if isinstance(v, str | bytes | list | tuple)]
            counts = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
            if operator == "*" and sized and counts and len(sized[0]) * max(counts[0], 0) > MAX_TEMPLATE_VALUE:
                raise SecurityError(f"the template builds a value of over {MAX_TEMPLATE_VALUE} items with *")
            if operator == "+" and len(sized) == 2 and len(left) + len(right) > MAX_TEMPLATE_VALUE:
                raise SecurityError(f"the template builds a value of over {MAX_TEMPLATE_VALUE} items with +")
            if operator == "**" and len(counts) == 2 and abs(left) > 1 and right * abs(left).bit_length() > 4096:
                raise SecurityError("the template computes a power of over 4096 bits")
            return super().call_binop(context, operator, left, right)

    chat_template_utils.ImmutableSandboxedEnvironment = BoundedSandbox
    chat_template_utils._compile_jinja_template.cache_clear()


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


def load_model(auto_class: str, source: str, *, option: str, allow_missing: tuple[str, ...] = (),
               **options: Any) -> Any:
    """Weights of ``source`` through ``transformers.<auto_class>``: safetensors only, no custom code, and every
    weight from the checkpoint (see the module docstring).

    ``options`` go to ``from_pretrained`` (``revision``, ``dtype``, ``device_map``, ...); they cannot
    turn on ``trust_remote_code`` or pickled weights. ``allow_missing``: prefixes of weights the caller never
    uses (the embedding model's pooler), which may be absent from the checkpoint.
    """
    if options.get("use_safetensors") is False or options.get("trust_remote_code"):
        raise ValueError("the model gate loads safetensors only and never runs checkpoint code")
    if Path(source).expanduser().is_dir():
        check_model_source(source, option=option)
    model, info = _from_pretrained(auto_class, source, option=option, what="cannot load the model",
                                   **{**options, "use_safetensors": True, "output_loading_info": True})
    check_all_loaded(model, info, source=source, option=option, allow_missing=allow_missing)
    return model


def check_all_loaded(model: Any, info: dict[str, Any], *, source: str, option: str,
                     allow_missing: tuple[str, ...] = ()) -> None:
    """Refuse a model whose loading info shows weights not read from the checkpoint (one line, first tensor)."""
    tied = getattr(model, "_tied_weights_keys", None) or {}
    missing = set(info.get("missing_keys") or ())

    def allowed_missing(key: str) -> bool:
        source_key = tied.get(key) if isinstance(tied, dict) else None
        return (key.endswith(RECOMPUTED) or key.startswith(allow_missing)
                or (source_key is not None and source_key not in missing))

    absent = sorted(k for k in missing if not allowed_missing(k))
    if absent:
        raise InputError(f"{option} {source}: the checkpoint lacks tensor {absent[0]} ({len(absent)} missing); "
                         "transformers would fill it with random weights")
    mismatched = sorted(str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys") or ())
    if mismatched:
        raise InputError(f"{option} {source}: tensor {mismatched[0]} has the wrong shape for this architecture")
    stray = sorted(k for k in info.get("unexpected_keys") or () if not k.endswith(RECOMPUTED)
                   and not k.startswith(OTHER_TASK_HEADS))
    if stray:
        raise InputError(f"{option} {source}: the checkpoint holds tensor {stray[0]}, which this architecture "
                         f"does not use ({len(stray)} such); is it the right model class?")


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
