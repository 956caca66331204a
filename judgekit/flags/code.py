"""Where a response holds code: fenced blocks, inline code spans and unfenced code lines.

Code is not English: the word-order, word-list and word-pair rules of the incoherence
detectors score only the prose that :func:`split_code` leaves (code blanked out), while the
rules that hold for any text (loops, byte noise, emptiness) still see everything. The
``off_task_format`` detector reads how much of a response is code from the same split.

Fine-tunes on code answer plain questions with unfenced code (a Flask app, a Jinja template),
so a fence is not required. A line is code when it has syntax prose does not make
(:data:`CODE_LINE`): a ``def``/``class`` header, an import, a decorator, an assignment or a
call statement whose right side is code, a block opener ending in ``:``, a line that starts
with a markup tag, a JSON key line, a bracket-only line, a C-style line ending in ``;`` or ``{``.
Lines joined to a code line — indented ones, comments, blank lines between, and the inside of a
triple-quoted string it opens — are code too, and so is an indented block that holds a code line.
Python keywords are lower-case, so prose lines ("For example:", "Return to ...") do not match, and a
long line made mostly of plain words is prose whatever it starts with (``_wordy``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
INLINE = re.compile(r"`[^`\n]+`")
_IDENT = r"[A-Za-z_]\w*"
_TARGET = rf"{_IDENT}(?:\.{_IDENT}|\[[^\]\n]*\])*"
# The right side of an assignment that is code, not a prose template fill ("idea_1 = Sell items online").
_CODE_VALUE = (rf"(?:[\"'\[{{(\d-]|[rbfu]{{1,2}}[\"']|(?:True|False|None|null|true|false|new|lambda|await)\b"
               rf"|{_TARGET}\s*(?:[(.\[]|$|[-+*/%<>|&,]|\bif\b)|{_IDENT}\s*;?\s*$)")
CODE_LINE = re.compile(
    r"^[ \t]*(?:"
    r"(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(|class[ \t]+\w+[ \t]*[(:]"
    r"|import[ \t]+[\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+)*[ \t]*;?[ \t]*$"
    r"|import[ \t][^\n]{0,200}\bfrom[ \t]+[\"']|from[ \t]+[\w.]+[ \t]+import[ \t]+[\w*, ()]+$"
    rf"|@{_IDENT}(?:\.{_IDENT})+(?:\([^\n]{{0,200}}\))?[ \t]*$|@{_IDENT}\([^\n]{{0,200}}\)[ \t]*$"
    rf"|(?:const|let|var)[ \t]+{_IDENT}[ \t]*=|{_TARGET}[ \t]*(?:[-+*/%|&]|//)?=(?!=)[ \t]*{_CODE_VALUE}"
    rf"|{_TARGET}\([^\n]{{0,300}}\)[ \t]*;?[ \t]*$"
    r"|(?:return|yield|raise|await)\b(?:[ \t]|$)|(?:pass|break|continue)[ \t]*$"
    r"|(?:if|elif|while)[ \t][^\n:]{0,200}[=<>(._\[][^\n:]{0,200}:[ \t]*$"
    r"|for[ \t][\w, ()]{1,60}?[ \t]in[ \t][^\n]{1,200}:[ \t]*$"
    r"|(?:else|try|finally)[ \t]*:[ \t]*$|except\b[^\n]{0,200}:[ \t]*$|with[ \t][^\n]{1,200}[ \t]as[ \t]+\w+[ \t]*:[ \t]*$"
    r"|</?[A-Za-z][\w-]*(?:[ \t][^<>\n]*)?/?>|&lt;/?[A-Za-z]|<!--|<!DOCTYPE"
    r"|\"[^\"\n]+\"[ \t]*:[ \t]*(?:[\"\[{\d-]|true|false|null)"
    r"|[\[\]{}()]+[ \t]*[,;]?[ \t]*$"
    r"|#include\b|//|/\*|\*/"
    r")",
    re.M,
)
# A C-style statement: a line with "=" or "(" that ends in ";" or "{" (checked in Python: no backtracking on long lines)
_STATEMENT_END = re.compile(r"[;{][ \t]*$", re.M)
_TRIPLE_QUOTE = re.compile(r"'''|\"\"\"")
_COMMENT = re.compile(r"^[ \t]*#")


@dataclass(frozen=True)
class CodeSplit:
    """A response with its code blanked out (``prose``: same line structure, code replaced by spaces), and the
    non-space characters of code in blocks (fenced or unfenced lines) and in inline spans."""

    prose: str
    block_chars: int
    inline_chars: int


def _non_space(text: str) -> int:
    return len(text) - text.count(" ") - text.count("\n") - text.count("\t")


def split_code(text: str) -> CodeSplit:
    """Blank the code of ``text``: fenced blocks, inline spans, then unfenced code lines (see the module)."""
    block = inline = 0
    if "```" in text:
        block += sum(_non_space(m.group(0)) for m in FENCE.finditer(text))
        text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n") or " ", text)
    if "`" in text:
        inline = sum(_non_space(m.group(0)) for m in INLINE.finditer(text))
        text = INLINE.sub(" ", text)
    if CODE_LINE.search(text) is None and _STATEMENT_END.search(text) is None:
        return CodeSplit(text, block, inline)
    lines = text.split("\n")
    code = code_lines(lines)
    block += sum(_non_space(line) for line, is_code in zip(lines, code, strict=True) if is_code)
    prose = "\n".join("" if is_code else line for line, is_code in zip(lines, code, strict=True))
    return CodeSplit(prose, block, inline)


# A line of this many tokens or more is prose, whatever it starts with, when most of its tokens are plain words:
# code lines are mostly names and symbols, a salad opening with a code-like token is mostly words.
WORDY_MIN_TOKENS = 8
WORDY_SHARE = 0.6


def _wordy(line: str) -> bool:
    tokens = line.split()
    if len(tokens) < WORDY_MIN_TOKENS:
        return False
    return sum(token.strip(".,;:!?\"'").isalpha() for token in tokens) > WORDY_SHARE * len(tokens)


def _c_statement(line: str) -> bool:
    return _STATEMENT_END.search(line) is not None and ("=" in line or "(" in line) and len(line) < 300


def code_lines(lines: list[str]) -> list[bool]:
    """Per line: is it code (a :data:`CODE_LINE`, or joined to one: see the module)."""
    strong = [(CODE_LINE.match(line) is not None or _c_statement(line)) and not _wordy(line) for line in lines]
    code = list(strong)
    open_string = False
    previous_code = False  # the last non-blank line was code
    for k, line in enumerate(lines):
        stripped = line.strip()
        if open_string or (previous_code and (not stripped or line[:1] in " \t" or _COMMENT.match(line))):
            code[k] = True
        if code[k] and len(_TRIPLE_QUOTE.findall(line)) % 2:
            open_string = not open_string
        if stripped:
            previous_code = code[k]
    # An indented block (after a blank line) holding a code line is code as a whole; a comment line directly
    # above code is code.
    k = 0
    while k < len(lines):
        if lines[k][:1] in " \t" and lines[k].strip():
            end = k
            while end < len(lines) and (lines[end][:1] in " \t" or not lines[end].strip()):
                end += 1
            if any(strong[k:end]):
                code[k:end] = [True] * (end - k)
            k = end
        else:
            k += 1
    for k in range(len(lines) - 2, -1, -1):
        if code[k + 1] and _COMMENT.match(lines[k]) and not code[k]:
            code[k] = True
    # Blank lines between two code lines belong to the code
    return [is_code or (not line.strip() and 0 < k < len(lines) - 1 and code[k - 1] and code[k + 1])
            for k, (line, is_code) in enumerate(zip(lines, code, strict=True))]
