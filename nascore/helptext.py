"""Command-line help text from reST docstrings: the markup stripped, the whitespace reflowed.

Command modules take their ``--help`` description from their docstring (one source for the code
reader and the command-line user); argparse would print the reST markup verbatim (double
backquotes, ``:func:`` / ``:mod:`` / ``:class:`` roles). :func:`plain` removes it and
:func:`doc_paragraph` picks one paragraph of a docstring:

>>> plain("``ecgnas train``: see :func:`ecgnas.run.train_run` and :class:`~nascore.lock.FileLock`.")
'ecgnas train: see ecgnas.run.train_run and FileLock.'
>>> plain("Example::")
'Example:'
>>> doc_paragraph("First ``one``\\n   continued.\\n\\nSecond.", 0)
'First one continued.'
"""

from __future__ import annotations

import re

# :role:`text` or :domain:role:`text`; "title <target>" keeps the title, "~a.b.C" keeps "C"
_ROLE = re.compile(r":(?:[a-zA-Z]+:)?[a-zA-Z]+:`([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_INTERPRETED = re.compile(r"(?<![\w`])`([^`\n]+)`(?![\w`])")
_STRONG = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


def _role_text(match: re.Match) -> str:
    text = match.group(1).strip()
    titled = re.fullmatch(r"(.+?)\s*<[^<>]+>", text, re.DOTALL)
    if titled:
        return titled.group(1)
    if text.startswith("~"):
        return text[1:].rsplit(".", 1)[-1]
    return text.lstrip("!")


def plain(text: str) -> str:
    """``text`` without reST inline markup: roles (``:func:`x``` -> ``x``), inline literals
    (````x```` -> ``x``), interpreted text (```x``` -> ``x``), strong emphasis, and a literal-block
    marker ``::`` at a line end (-> ``:``). Whitespace is left as it is."""
    text = _ROLE.sub(_role_text, text)
    text = _LITERAL.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    return re.sub(r"::[ \t]*$", ":", text, flags=re.MULTILINE)


def doc_paragraph(doc: str | None, index: int = 0) -> str:
    """Paragraph ``index`` (blank-line separated) of the docstring ``doc`` as one plain line, for
    an argparse ``description``; an empty string when ``doc`` has no such paragraph."""
    paragraphs = [p for p in re.split(r"\n\s*\n", (doc or "").strip()) if p.strip()]
    if not 0 <= index < len(paragraphs):
        return ""
    return " ".join(plain(paragraphs[index]).split())
