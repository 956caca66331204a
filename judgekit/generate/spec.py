"""What a generation run is made of: models, decoding settings, chat rendering, seeds, requests.

Everything that changes a response is here and goes into the generation spec
hash (the cache key) and the manifest: the weights (a fingerprint of the
checkpoint and adapter files), the chat template (sha256) and how it is
applied, the system prompt, the decoding settings and the engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from judgekit.errors import InputError
from judgekit.judges.rendering import apply_template

# Seeds are 31-bit so every engine accepts them (vLLM and the OpenAI API take a signed 32-bit or wider int).
SEED_BITS = 31


@dataclass(frozen=True)
class Decoding:
    """Decoding settings shared by every model of a run.

    ``temperature == 0`` is greedy decoding (then ``samples`` must be 1: greedy
    samples would be copies). ``system_prompt`` None sends no system message.
    """

    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise InputError(f"--samples must be at least 1, got {self.samples}")
        if not self.temperature >= 0:
            raise InputError(f"--temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise InputError(f"--max-new-tokens must be at least 1, got {self.max_new_tokens}")
        if self.seed < 0:
            raise InputError(f"--seed must be >= 0, got {self.seed}")
        if self.greedy and self.samples > 1:
            raise InputError("greedy decoding (--temperature 0) gives identical samples; set --temperature > 0 for --samples > 1")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "greedy": self.greedy, "seed_rule": "sha256(seed, prompt_id, sample), same for every model"}


@dataclass(frozen=True)
class ModelVariant:
    """One model of the study: the base weights, or the base weights with a LoRA adapter.

    ``served_model`` is the name an HTTP server knows it by (vLLM serves an
    adapter under its ``--lora-modules`` name).
    """

    name: str
    base_model: str | None = None
    finetune_goal: str | None = None
    mitigation: str | None = None
    adapter: str | None = None
    served_model: str | None = None

    def columns(self) -> dict[str, str | None]:
        return {"model": self.name, "base_model": self.base_model, "finetune_goal": self.finetune_goal,
                "mitigation": self.mitigation}


@dataclass(frozen=True)
class GenerationRequest:
    """One (prompt, sample) to generate: the rendered token ids and its own seed."""

    prompt_id: str
    sample: int
    seed: int
    ids: tuple[int, ...]

    def content_hash(self) -> str:
        """Cache key of the request within one generation spec: what is sent and the seed."""
        payload = json.dumps([list(self.ids), self.seed], separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Generation:
    """One engine answer; ``error`` set means the request failed for good (never cached, never a response row)."""

    text: str
    finish_reason: str
    n_prompt_tokens: int
    n_response_tokens: int
    error: str | None = None


def sample_seed(seed: int, prompt_id: str, sample: int) -> int:
    """The seed of one (prompt, sample): independent of the model, the batch and the engine's other requests."""
    digest = hashlib.sha256(f"{seed}\x1f{prompt_id}\x1f{sample}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


class ChatRenderer:
    """The model's own chat template, applied as ``apply_chat_template`` does (generation prompt on,
    the rendered text tokenized without adding special tokens again)."""

    def __init__(self, tokenizer: Any, system_prompt: str | None, *, source: str) -> None:
        template = getattr(tokenizer, "chat_template", None)
        if not isinstance(template, str) or not template:
            raise InputError(f"{source}: the tokenizer has no chat template; judgekit generate renders prompts with the "
                             "model's own template (add one to tokenizer_config.json, or use the chat/instruct checkpoint)")
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.template_sha256 = hashlib.sha256(template.encode("utf-8")).hexdigest()
        self.source = source
        self.render_text("{prompt}")  # a template that refuses a system message fails here, before any work

    def messages(self, prompt: str) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []
        return [*system, {"role": "user", "content": prompt}]

    def render_text(self, prompt: str) -> str:
        what = "with a system message" if self.system_prompt is not None else "on a user message"
        return apply_template(self.tokenizer, self.messages(prompt), name=f"{self.source}: the chat template ({what})",
                              add_generation_prompt=True)

    def render(self, prompt: str) -> tuple[int, ...]:
        return tuple(self.tokenizer.encode(self.render_text(prompt), add_special_tokens=False))

    def describe(self) -> dict[str, Any]:
        return {
            "template_sha256": self.template_sha256,
            "add_generation_prompt": True,
            "system_prompt_policy": "none (no system message; the template's own default, if any, applies)"
            if self.system_prompt is None else "given",
            "system_prompt": self.system_prompt,
            "tokenized": "rendered text, add_special_tokens=False (as apply_chat_template)",
            "rendering_of_{prompt}": self.render_text("{prompt}"),
        }


def build_requests(prompts: list[tuple[str, str]], renderer: ChatRenderer, decoding: Decoding) -> list[GenerationRequest]:
    """Every (prompt, sample) of the run, in prompt order then sample order."""
    requests = []
    for prompt_id, text in prompts:
        ids = renderer.render(text)
        requests.extend(GenerationRequest(prompt_id, k, sample_seed(decoding.seed, prompt_id, k), ids)
                        for k in range(decoding.samples))
    return requests


def fingerprint(source: str | None) -> str | None:
    """Identity of a checkpoint or adapter without reading its weights: a local directory's absolute path, its
    JSON files (content) and its weight files (name, size, modification time); a hub id as it is.

    Two fine-tunes of one architecture have weight files of equal size, so the path and the modification
    times are part of it: copying or rewriting a checkpoint starts a fresh cache, never a wrong hit.
    """
    if source is None:
        return None
    path = Path(source)
    if not path.is_dir():
        return f"id:{source}"
    digest = hashlib.sha256(str(path.resolve()).encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        if file.suffix == ".json":
            digest.update(f"{relative}\x1f".encode() + file.read_bytes())
        elif file.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            stat = file.stat()
            digest.update(f"{relative}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


