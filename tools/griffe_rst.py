"""Griffe extension for the API pages: the reStructuredText bits of judgekit's numpydoc docstrings, in Markdown.

``:math:`p_o``` becomes inline code (the formula stays readable offline, with no MathJax from a CDN), and a numpydoc
reference ``.. [1] Cohen, J. (1960)...`` becomes ``[1] Cohen, J. (1960)...``. Loaded by mkdocs.yml.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

MATH_ROLE = re.compile(r":math:`([^`]*)`")
REFERENCE_TARGET = re.compile(r"^(\s*)\.\. (\[\w+\])", re.M)


def markdown_from_rst(text: str) -> str:
    return REFERENCE_TARGET.sub(r"\1\2", MATH_ROLE.sub(r"`\1`", text))


class RstToMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # noqa: ARG002 (griffe's event signature)
        if obj.docstring is not None:
            obj.docstring.value = markdown_from_rst(obj.docstring.value)
