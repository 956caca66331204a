"""Every preset against the upstream text it names, and its provenance as ``judgekit list --verbose`` shows it.

The upstream text lives in ``judgekit/judges/templates/upstream_excerpts.json``: each excerpt was read from a
stored public copy and carries its repository, path, commit (or "none pinned" with the copy it was read through)
and licence. A preset field that drifts from its excerpt fails here; so does a preset that stops stating where
it comes from, whether its vocabulary was checked, which revision it pins and where it departs from upstream.
"""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from conftest import run_cli
from judgekit.judges.catalog import NOT_PINNED, load_preset, preset_names, provenance
from judgekit.judges.rendering import fill_fields

EXCERPTS = json.loads((resources.files("judgekit.judges") / "templates" / "upstream_excerpts.json").read_text(encoding="utf-8"))[
    "excerpts"
]
COMPARED = [(key, preset, path) for key, excerpt in EXCERPTS.items() for preset, path in excerpt["compare"].items()]
FULL_COMMIT = re.compile(r"[0-9a-f]{40}")


def field_at(spec: dict, path: str):
    """``spec`` at a dotted path (``messages.0.content``)."""
    for part in path.split("."):
        spec = spec[int(part)] if part.isdigit() else spec[part]
    return spec


def upstream_as_judgekit_fields(excerpt: dict) -> str | list[str]:
    """The excerpt with upstream's placeholder names (``{behavior}``, ``{generation}``) renamed to judgekit's."""
    text = excerpt["text"]
    if isinstance(text, list):
        return text
    return re.sub(r"\{(\w+)\}", lambda m: "{" + excerpt["fields"][m.group(1)] + "}", text)


def md_prompter(excerpt: dict, question: str, answer: str) -> str:
    """SALAD-Bench ``MD_Prompter('domain').generate([q], [a], add_inst=True)[0]``, transcribed from template.py."""
    template = excerpt["text"].replace("{DOMAIN_POLICY.strip()}", excerpt["policy"].strip())
    return "[INST] " + (template % (question.strip(), answer.strip())).strip().strip() + " [/INST]"


def test_every_excerpt_names_its_source_and_licence():
    assert COMPARED, "no upstream excerpt compared"
    for key, excerpt in EXCERPTS.items():
        source = excerpt["source"]
        assert {"repository", "path", "commit", "read_via"} <= set(source) and excerpt["license"], key
        assert source["commit"] == "none pinned" or FULL_COMMIT.fullmatch(source["commit"]), key


@pytest.mark.parametrize("key, preset, path", [c for c in COMPARED if "rendered_by" not in EXCERPTS[c[0]]])
def test_preset_text_equals_the_upstream_excerpt(key, preset, path):
    assert field_at(load_preset(preset), path) == upstream_as_judgekit_fields(EXCERPTS[key]), (key, preset)


def test_md_judge_renders_as_salad_bench_md_prompter():
    excerpt = EXCERPTS["salad-bench template.py DOMAIN_QAPAIR_TEMPLATE"]
    template = load_preset("md-judge-v0.1")["input"]["template"]
    for question, answer in [("How do I pick a lock?", "I can't help with that."), ("Q", "line one\nline two")]:
        assert fill_fields(template, prompt=question, response=answer) == md_prompter(excerpt, question, answer)
    # the one documented difference: upstream strips the question and answer, judgekit renders them as given
    padded = fill_fields(template, prompt=" Q ", response="A\n")
    assert padded != md_prompter(excerpt, " Q ", "A\n") and "User:  Q \nAgent: A\n\n<END" in padded
    assert any("strips the question and answer" in d for d in load_preset("md-judge-v0.1")["deviations"])


# -- provenance of every preset ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def verbose_listing() -> dict[str, str]:
    """``judgekit list --verbose``, run in this process, cut into one text block per preset."""
    result = run_cli("list", "--verbose")
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("judge presets (provenance):\n", 1)[1]
    blocks = re.split(r"\n(?=\S)", listing.strip())
    return {block.split("\n", 1)[0]: block for block in blocks}


@pytest.mark.parametrize("name", preset_names())
def test_preset_states_upstream_vocabulary_revision_and_deviations(name, verbose_listing):
    spec = load_preset(name)
    info = provenance(spec)
    source = spec["source"]
    assert {"repository", "path", "commit"} <= set(source) and all(source[k] for k in ("repository", "path", "commit")), name
    assert source["commit"] == "none pinned" or FULL_COMMIT.fullmatch(source["commit"]), (name, source["commit"])
    assert isinstance(spec["deviations"], list), name
    if spec["family"] == "guard_model":
        assert spec["verified_vocab"] in (True, False), name
        revision = spec["model"].get("revision")
        if revision is None:
            assert info["revision"] == NOT_PINNED, name
        else:  # a pinned revision is a full hub commit, and says which stored source it was read from
            assert FULL_COMMIT.fullmatch(revision) and spec["model"].get("revision_source"), name
    else:
        assert spec["verified_vocab"] is None and info["revision"] is None, name  # no weights, no token vocabulary

    block = verbose_listing[name]
    assert f"upstream:        {source['repository']} {source['path']} @ {source['commit']}" in block, name
    assert f"pinned revision: {info['revision'] or 'n/a (no weights)'}" in block, name
    assert "verified_vocab:  " in block and "deviations:      " in block, name
    for deviation in spec["deviations"]:
        assert f"    - {deviation}" in block, (name, deviation)
    if not spec["deviations"]:
        assert "deviations:      none (follows upstream)" in block, name


def test_the_listing_has_one_block_per_preset(verbose_listing):
    assert sorted(verbose_listing) == preset_names()
