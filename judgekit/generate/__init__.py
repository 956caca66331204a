"""Responses from base, fine-tuned and mitigated checkpoints on prompt sets, paired by construction.

``judgekit generate`` renders every prompt with the model's own chat template,
draws K samples per (model, prompt) with a seed derived from (seed, prompt_id,
sample) only — the same seeds for every model, so models are compared on the
same prompts and the same random numbers — and writes a ``responses`` table
with ``prompt_id``, ``sample``, ``model``, ``base_model``, ``finetune_goal``
and ``mitigation``. Finished batches are committed to
``STUDY/cache/generation_cache.sqlite`` so a killed run resumes.

Modules: :mod:`.spec` (models, decoding, chat rendering, seeds), :mod:`.cache`,
the engines :mod:`.transformers_backend`, :mod:`.http_backend`,
:mod:`.vllm_backend`, :mod:`.run` (the step) and :mod:`.config`
(``judgekit run CONFIG.toml``).
"""
