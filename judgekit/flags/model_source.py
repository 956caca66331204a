"""Where a detector's model comes from: a local transformers directory with safetensors weights, or a
hub id whose config loads. Checked before a step locks the study or does any work."""

from __future__ import annotations

import re
from pathlib import Path

from judgekit.errors import InputError

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def check_model_source(source: str, *, option: str) -> None:
    """Refuse, before any work, a model that cannot be loaded safely: one line naming what is wrong.

    A local directory needs a ``config.json`` and ``*.safetensors`` weights (a directory with only
    pickled ``*.bin`` weights is refused). Anything else must be a hub id (``org/name``) whose
    config loads (from the cache or the hub); whether the hub copy has safetensors is checked
    when the weights load (``use_safetensors=True``).

    Raises
    ------
    InputError
        The path does not exist, is not a model directory, or holds only pickled weights.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"{option} {source}: no config.json in this directory (not a transformers model)")
        if not any(path.glob("*.safetensors")):
            pickled = sorted(p.name for p in path.glob("*.bin"))
            what = f"only pickled weights ({', '.join(pickled)})" if pickled else "no *.safetensors weights"
            raise InputError(f"{option} {source}: {what}; judgekit loads safetensors only (unpickling runs code)")
        return
    if path.exists():
        raise InputError(f"{option} {source}: not a directory")
    # "models/lm" is a missing local directory when ./models exists; "org/name" otherwise names a hub model
    if source.startswith((".", "/", "~")) or not _HUB_ID.fullmatch(source) or path.parent.name and path.parent.is_dir():
        raise InputError(f"{option} {source}: no such model directory")
    from transformers import AutoConfig

    try:  # the hub copy's config, from the cache or the hub: an unknown id stops here, not after the heuristics
        AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{option} {source}: no such model directory, and no hub model to load: {first}") from None
