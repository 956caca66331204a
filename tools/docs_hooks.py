"""MkDocs hook: the reference pages are generated from the code at build time, never copied by hand.

A page holds a marker comment, and the hook replaces it before MkDocs renders the page:

* ``<!-- generated: cli -->``: every command and subcommand of ``judgekit.cli.build_parser()``, each with its
  one-line summary and its ``--help`` text exactly as argparse prints it;
* ``<!-- generated: judges -->``: every judge preset in ``judgekit/judges/presets/`` with its family, model,
  source (repository, path, commit), licence and citation;
* ``<!-- generated: statistics -->``: every registered statistic as a mkdocstrings directive, so its numpydoc
  docstring (formula, notes, references) is the page.

``tests/test_docs_site.py`` checks that the CLI page names every command, option and positional of the parser,
and builds the whole site with ``--strict``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # mkdocs loads this file by path; the reference reads the checkout's judgekit
    sys.path.insert(0, str(REPO))

HELP_WIDTH = "100"


def command_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                    ) -> Iterator[tuple[tuple[str, ...], str, argparse.ArgumentParser]]:
    """Every (command path, one-line help, parser) below ``parser``, depth first; an alias is visited once."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            yield (*path, name), summaries.get(name, ""), sub
            yield from command_parsers(sub, (*path, name))


def cli_reference() -> str:
    from judgekit.cli import build_parser

    parser = build_parser()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps at the terminal width: fix it so the page is reproducible
    try:
        parts = ["## judgekit", "", "```text", parser.format_help().rstrip(), "```", ""]
        for path, summary, sub in command_parsers(parser):
            parts += [f"## judgekit {' '.join(path)}", "", summary, "", "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(parts)


def _cell(text: object) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def judges_reference() -> str:
    folder = REPO / "judgekit" / "judges" / "presets"
    rows = ["| preset | family | model | what it is | source | licence |", "|---|---|---|---|---|---|"]
    citations = []
    for file in sorted(folder.glob("*.json")):
        spec = json.loads(file.read_text(encoding="utf-8"))
        source = spec["source"]
        where = f"`{source['repository']}` `{source['path']}` @ `{str(source['commit'])[:12]}`"
        model = spec.get("model", {}).get("id", "") if isinstance(spec.get("model"), dict) else spec.get("model", "")
        rows.append(f"| `{spec['judge_id']}` | {spec['family']} | {_cell(model) or '—'} | {_cell(spec['description'])} "
                    f"| {where} | {_cell(spec['license'])} |")
        citations.append(f"- `{spec['judge_id']}`: {_cell(spec['citation'])}")
    return "\n".join([*rows, "", "### Citations", "", *citations, ""])


def statistics_reference() -> str:
    from judgekit.registry import STATISTIC_ENTRIES

    parts = []
    module = None
    for group, name, summary in STATISTIC_ENTRIES:
        if group != module:
            module = group
            parts += [f"## {group}", ""]
        parts += [f"### `{name}`", "", f"{summary}.", "",
                  f"::: judgekit.stats.{group}.{name}",
                  "    options:", "      show_root_heading: false", "      show_root_toc_entry: false", ""]
    return "\n".join(parts)


GENERATORS = {"cli": cli_reference, "judges": judges_reference, "statistics": statistics_reference}


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (the MkDocs hook signature)
    for name, generate in GENERATORS.items():
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
