"""A word-level diff of two long texts, for the review page's changed cells (`web.present.row_views`).

Pure Python (difflib on words): long unchanged stretches are collapsed to a few words of
context, so a one-word edit in a paragraph reads at a glance.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

WORD_DIFF_OVER = 8  # text of more words than this gets a word-level diff
CONTEXT_WORDS = 4  # unchanged words kept on each side of a change; longer runs are collapsed
_TOKENS = re.compile(r"\s+|[^\s]+")


@dataclass
class Piece:
    """A stretch of a word-level diff: same, del (only in the old text), ins (only in the new), or
    gap (unchanged words collapsed; `text` holds them)."""

    kind: str
    text: str


def word_diff(old: str, new: str) -> list[Piece] | None:
    """The words that changed between two texts, long unchanged stretches collapsed to a few words
    of context; None when both are short enough to be shown whole as old → new.

    >>> [(p.kind, p.text) for p in word_diff("a b c d e f g h i j k l", "a b c d e f g h i j k l m")]
    [('gap', 'a b c d e f g h '), ('same', 'i j k l'), ('ins', ' m')]
    >>> word_diff("Sales", "Sales EMEA") is None
    True
    """
    if not old or not new or max(len(old.split()), len(new.split())) <= WORD_DIFF_OVER:
        return None
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    pieces: list[Piece] = []
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        inner = 0 < n < len(opcodes) - 1
        if tag == "equal" and not (inner and all(t.isspace() for t in a[i1:i2])):
            pieces.extend(_context(a[i1:i2], first=n == 0, last=n == len(opcodes) - 1))
            continue
        # a change, or the space between two changes: "every region" → "each country" reads as one
        if i2 > i1:
            _append(pieces, Piece("del", "".join(a[i1:i2])))
        if j2 > j1:
            _append(pieces, Piece("ins", "".join(b[j1:j2])))
    return pieces


def _append(pieces: list[Piece], piece: Piece) -> None:
    """Add a del or ins piece, joined with the del/ins pieces already at the end."""
    for back in (1, 2):
        tail = pieces[-back:] if len(pieces) >= back else []
        if tail and tail[0].kind == piece.kind and all(p.kind in ("del", "ins") for p in tail):
            tail[0].text += piece.text
            return
    pieces.append(piece)


def _context(tokens: list[str], first: bool, last: bool) -> list[Piece]:
    """An unchanged stretch: whole when short, else a few words next to the changes and a gap."""
    words = [i for i, t in enumerate(tokens) if not t.isspace()]
    keep_before = 0 if first else CONTEXT_WORDS  # words kept after the change before this stretch
    keep_after = 0 if last else CONTEXT_WORDS  # words kept before the change after it
    if len(words) <= keep_before + keep_after + 2:
        return [Piece("same", "".join(tokens))]
    head_end = words[keep_before - 1] + 1 if keep_before else 0
    tail_start = words[len(words) - keep_after] if keep_after else len(tokens)
    out = []
    if head_end:
        out.append(Piece("same", "".join(tokens[:head_end])))
    out.append(Piece("gap", "".join(tokens[head_end:tail_start])))
    if tail_start < len(tokens):
        out.append(Piece("same", "".join(tokens[tail_start:])))
    return out
