"""How requests, staged rows, versions and audit entries are shown: one place, shared by the pages and the API.

Downloads are `web.downloads`; the word-level diff of long text is `web.word_diff`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

import history
import tables
from diff import KIND_OF, ROW_KINDS, changed_fields
from files.damage import invisible_only, visible
from models import ChangeRequest, Comment, MergeConflict, WarningKind
from records import as_dict, unpack
from schema import Schema
from values import Field
from web.word_diff import Piece, word_diff

# The three kinds of staged change: their names in the API and on the review page → stored action.
KINDS = ROW_KINDS  # kind → action (diff.ROW_KINDS)


def iso(value: dt.datetime | None) -> str | None:
    """A naive UTC datetime → ISO 8601 with Z."""
    return None if value is None else value.isoformat() + "Z"


# --- change requests -------------------------------------------------------------------------


def stage_json(result) -> tuple[dict[str, Any], int]:
    """The answer to an upload or a revert (uploads.StageResult) and its status: 201 staged, 200 nothing to do."""
    body = {
        "id": result.change.id if result.change else None,
        "status": "pending" if result.change else "unchanged",
        "base_version": result.base_version,
        "summary": result.summary,
        "encoding": result.encoding,
        "warnings": result.warnings,
    }
    if result.members:  # an upload of several tables: a request per table, decided together
        body["requests"] = [member_json(m) for m in result.members]
    return body, 201 if result.change else 200


def member_json(cr: ChangeRequest) -> dict[str, Any]:
    """One table's request of an upload spanning tables."""
    return {"id": cr.id, "table": tables.of_request(cr).name, "status": cr.status, "summary": cr.summary}


def change_json(cr: ChangeRequest) -> dict[str, Any]:
    """A change request's facts for the API (without its rows)."""
    return {
        "id": cr.id,
        "table": tables.of_request(cr).name,
        "batch": cr.batch,  # the first request of an upload spanning tables (null: this upload's only one)
        "status": cr.status,
        "mode": cr.mode,
        "submitter": cr.submitter,
        "comment": cr.comment,
        "filename": cr.filename,
        "encoding": cr.encoding,
        "base_version": cr.base_version,
        "base_source": cr.base_source or None,
        "merged_version": cr.merged_version,
        "summary": cr.summary,
        "warnings": cr.warning_list,
        "created_at": iso(cr.created_at),
        "decided_by": cr.decided_by,
        "decided_at": iso(cr.decided_at),
        "reason": cr.reason,
        "applied_version": cr.applied_version,
        "reverts": cr.reverts,
        "rows_purged": cr.rows_purged_at is not None,
        "rows_purged_at": iso(cr.rows_purged_at),
        "revision": cr.revision,  # 2, 3, … after corrected files (discussion.revise)
    }


def warning_groups(cr: ChangeRequest) -> dict[str, list[str]]:
    """A request's warnings for the review page: those about undoing approvals, and spreadsheet damage."""
    items = cr.warning_items
    decided = cr.status in ("approved", "rejected", "withdrawn")  # warnings meant for the decision: hidden once made
    return {
        "undo": [] if decided else [w.message for w in items if w.kind is WarningKind.UNDO],
        "damage": []
        if decided
        else [w.message for w in items if w.kind is not WarningKind.UNDO and not is_notice(w.message)],
        "notices": [w.message for w in items if is_notice(w.message)],
    }


def is_notice(message: str) -> bool:
    """A note on what was not read (a sheet or file named after no table, a hidden sheet):
    information, not a sign of spreadsheet damage."""
    return message.startswith("Not read: ")


def row_dicts(change: ChangeRequest, schema: Schema, action: str, rows: Iterable[tuple]) -> Iterator[dict[str, Any]]:
    """Staged rows (key, line, before, after, …) → API objects: added/deleted rows, or modified {key, before, after, changed}."""
    names = change.field_names
    for key, line, before, after, *_ in rows:
        if action == "modify":
            yield {
                "key": key,
                "line": line,
                "before": schema.to_dict(before, names),
                "after": schema.to_dict(after, names),
                "changed": changed_fields(unpack(before), unpack(after), names),
            }
        else:
            yield schema.to_dict(after if action == "add" else before, names)


@dataclass
class CellView:
    """One cell of a staged row on the review page."""

    name: str
    label: str
    old: str | None
    new: str | None
    changed: bool


def cell_views(schema: Schema, names: list[str], before: str | None, after: str | None) -> list[CellView]:
    """Cells of one staged row for the review page, flagged where before and after differ."""
    old = as_dict(before, names) if before is not None else {}
    new = as_dict(after, names) if after is not None else {}
    labels = {f.name: f.label for f in schema.fields}
    return [
        CellView(
            n,
            labels.get(n, n),
            old.get(n) if before is not None else None,
            new.get(n) if after is not None else None,
            before is not None and after is not None and old.get(n) != new.get(n),
        )
        for n in names
    ]


# --- the review page and the version diff: one row view for both ---------------------------


@dataclass
class CellChange:
    """One changed cell of a modified row: old → new, with a word-level diff for long text."""

    name: str
    label: str
    old: str
    new: str
    pieces: list[Piece] | None


@dataclass
class RowView:
    """A staged (or version diff) row: its key, kind, the uploaded file's line, a warning, every
    cell, and for a modification the changed cells."""

    key: str
    kind: str  # modified | added | deleted
    line: int | None
    warning: str | None
    cells: list[CellView]
    changes: list[CellChange] = field(default_factory=list)


ACTION_KINDS = KIND_OF


def row_views(schema: Schema, names: Sequence[str], rows: Iterable[tuple]) -> list[RowView]:
    """Rows (key, line, before, after, warning, action) → what the shared diff table shows."""
    labels = {f.name: f.label for f in schema.fields}
    types = {f.name: f.type for f in schema.fields}
    out = []
    for key, line, before, after, warning, action in rows:
        cells = cell_views(schema, list(names), before, after)
        changes = []
        for c in cells:
            if not c.changed:
                continue
            old, new = c.old or "", c.new or ""
            if invisible_only(old, new):  # NBSP for a space, CR LF for LF: show the characters
                old, new = visible(old), visible(new)
            words = word_diff(old, new) if types.get(c.name, "string") == "string" else None
            changes.append(CellChange(c.name, labels.get(c.name, c.name), old, new, words))
        out.append(RowView(key, ACTION_KINDS.get(action, action), line, warning, cells, changes))
    return out


@dataclass
class ColumnCount:
    """How many modified rows change one column, for the review page's filter links."""

    name: str
    label: str
    rows: int


def column_counts(schema: Schema, counts: dict[str, int]) -> list[ColumnCount]:
    """Per-column counts in schema order (columns no row changes left out)."""
    labels = {f.name: f.label for f in schema.fields}
    known = [ColumnCount(n, labels[n], counts[n]) for n in schema.names if counts.get(n)]
    return known + [ColumnCount(n, n, c) for n, c in counts.items() if n not in labels and c]


def version_diff_counts(schema: Schema, modified: Iterable[tuple[str, str, str]]) -> dict[str, int]:
    """{column: modified rows changing it} of a version diff (computed from its rows: they are in memory)."""
    names = list(schema.names)
    counts: Counter[str] = Counter()
    for _, before, after in modified:
        counts.update(changed_fields(unpack(before), unpack(after), names))
    return dict(counts)


def page_count(total: int, size: int) -> int:
    """Pages needed for `total` rows (at least one: an empty list is one empty page)."""
    return max(1, math.ceil(total / size))


# --- the table page --------------------------------------------------------------------------

LONG_TEXT = 160  # characters: longer text is clamped, the whole of it one click away
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
_URL = re.compile(r"https?://\S+\Z")


@dataclass
class ValueView:
    """A cell of the table page: its text as shown, and how (a link, a number, long text, a key)."""

    text: str
    kind: str  # key | url | number | long | date | text
    full: str = ""


@dataclass
class RequestLine:
    """A line of the request list: one request, or the requests of one upload of several tables
    (a batch), shown as one line that opens to list them."""

    first: ChangeRequest
    members: list[ChangeRequest]

    @property
    def added(self) -> int:
        return sum(m.added for m in self.members)

    @property
    def modified(self) -> int:
        return sum(m.modified for m in self.members)

    @property
    def deleted(self) -> int:
        return sum(m.deleted for m in self.members)


def request_lines(items: Iterable[ChangeRequest]) -> list[RequestLine]:
    """Requests in list order, those of one batch joined on the line of the first met."""
    lines: list[RequestLine] = []
    batches: dict[int, RequestLine] = {}
    for cr in items:
        if cr.batch is not None and cr.batch in batches:
            batches[cr.batch].members.append(cr)
            continue
        line = RequestLine(cr, [cr])
        if cr.batch is not None:
            batches[cr.batch] = line
        lines.append(line)
    for line in lines:
        line.members.sort(key=lambda m: m.id)
    return lines


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """A count with thousands separators and its noun, singular for exactly one.

    >>> plural(1, "change"), plural(0, "conflict"), plural(20000, "row"), plural(2, "batch", "batches")
    ('1 change', '0 conflicts', '20,000 rows', '2 batches')
    """
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def value_views(schema: Schema, values: Sequence[str]) -> list[ValueView]:
    """A row's canonical values as the table page shows them: URLs as links, numbers with
    thousands separators, long text clamped (`full` holds all of it), keys and dates unbroken."""
    return [
        _value_view(f, v, i == schema.key_index) for i, (f, v) in enumerate(zip(schema.fields, values, strict=False))
    ]


def _value_view(f: Field, value: str, is_key: bool) -> ValueView:
    if is_key:
        return ValueView(value, "key")
    if value and f.type in ("integer", "number"):
        return ValueView(_thousands(value), "number")
    if f.type in ("date", "datetime"):
        return ValueView(value.replace("T", " "), "date")
    if _URL.match(value):
        return ValueView(value, "url")
    if _EMAIL.match(value):  # kept on one line: an address broken mid-word reads as two
        return ValueView(value, "email")
    if len(value) > LONG_TEXT:
        cut = value[:LONG_TEXT].rsplit(" ", 1)[0] or value[:LONG_TEXT]
        return ValueView(cut + "…", "long", value)
    return ValueView(value, "text")


def _thousands(text: str) -> str:
    """1234567 → 1,234,567; 1234.5 → 1,234.5 (exponents and anything odd left as they are).

    >>> _thousands("1234567"), _thousands("-1234.25"), _thousands("1e-07")
    ('1,234,567', '-1,234.25', '1e-07')
    """
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, fraction = digits.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        return text
    return f"{sign}{int(whole):,}{dot}{fraction}"


def deletion_sample(schema: Schema, sample: Iterable[tuple[str, str]], columns: int = 3) -> list[list[str]]:
    """The first rows a mass deletion would remove: the key and the next few columns' values."""
    return [unpack(record)[: columns + 1] for _, record in sample]


def conflict_json(conflict: MergeConflict, schema: Schema, names: list[str]) -> dict[str, Any]:
    """{"key", "column", "base", "theirs", "yours"}: cell values, or whole rows (column null), null where absent."""
    if conflict.column is None:
        values = [
            schema.to_dict(v, names) if v is not None else None
            for v in (conflict.base, conflict.theirs, conflict.yours)
        ]
    else:
        field = next((f for f in schema.fields if f.name == conflict.column), None)
        values = [
            None if v is None else field.to_json(v) if field is not None else v
            for v in (conflict.base, conflict.theirs, conflict.yours)
        ]
    return {"key": conflict.key, "column": conflict.column, "base": values[0], "theirs": values[1], "yours": values[2]}


@dataclass
class ConflictCell:
    """One column of a whole-row conflict: its three values, and whether yours and theirs differ there."""

    label: str
    base: str | None
    theirs: str | None
    yours: str | None
    differs: bool


@dataclass
class ConflictView:
    """A conflict as the review page shows it: a cell's three values, or a row's as `name: value; …`
    with `cells` (the columns where the three are not all equal, the differing ones marked), who
    made theirs (`by`), and the words of the two buttons (what each does to the row)."""

    key: str
    column: str | None
    base: str | None
    theirs: str | None
    yours: str | None
    cells: list[ConflictCell] = field(default_factory=list)
    by: ChangeRequest | None = None
    keep_yours: str = "Keep mine"
    keep_theirs: str = "Keep theirs"


def _buttons(c: MergeConflict) -> tuple[str, str]:
    """The words that say what each choice does: a deleted row is deleted anyway or kept."""
    if c.column is None and c.yours is None:  # you deleted a row others changed
        return "Delete anyway", "Keep the row"
    if c.column is None and c.theirs is None:  # you changed a row others deleted
        return "Bring it back with my values", "Leave it deleted"
    return "Keep mine", "Keep theirs"


def conflict_views(
    conflicts: Iterable[MergeConflict], names: list[str], by: Mapping[str, ChangeRequest] | None = None
) -> list[ConflictView]:
    """The review page's conflicts; `by`: {key: the request that made theirs} (changes.theirs_made_by)."""

    def shown(value: str | None, whole_row: bool) -> str | None:
        if value is None or not whole_row:
            return value
        return "; ".join(f"{n}: {v}" for n, v in as_dict(value, names).items() if v)

    def cells(c: MergeConflict) -> list[ConflictCell]:
        if c.column is not None:
            return []
        rows = [unpack(v) if v is not None else None for v in (c.base, c.theirs, c.yours)]
        out = []
        for i, name in enumerate(names):
            base, theirs, yours = (r[i] if r is not None and i < len(r) else None for r in rows)
            if base == theirs == yours:
                continue
            # a deleted side differs everywhere: mark instead what the other side changed
            if yours is None:
                differs = base != theirs
            elif theirs is None:
                differs = base != yours
            else:
                differs = theirs != yours
            out.append(ConflictCell(name, base, theirs, yours, differs))
        return out

    return [
        ConflictView(
            c.key,
            c.column,
            *(shown(v, c.column is None) for v in (c.base, c.theirs, c.yours)),
            cells=cells(c),
            by=(by or {}).get(c.key),
            keep_yours=_buttons(c)[0],
            keep_theirs=_buttons(c)[1],
        )
        for c in conflicts
    ]


# --- versions --------------------------------------------------------------------------------


def version_json(cr: ChangeRequest, with_table: bool = False) -> dict[str, Any]:
    """One version: the approved request that made it (`with_table`: and its table's name, for the list of every table)."""
    return {
        "version": cr.applied_version,
        "change_id": cr.id,
        "comment": cr.comment,
        "submitter": cr.submitter,
        "approver": cr.decided_by,
        "approved_at": iso(cr.decided_at),
        "summary": {"added": cr.added, "modified": cr.modified, "deleted": cr.deleted},
    } | ({"table": tables.of_request(cr).name} if with_table else {})


def version_diff_rows(schema: Schema, kind: str, rows: Iterable[tuple]) -> list[dict[str, Any]]:
    """A version diff's (key, before, after) rows in the shapes of a change request's detail."""
    names = list(schema.names)
    if kind == "modified":
        return [
            {
                "key": key,
                "before": schema.to_dict(before),
                "after": schema.to_dict(after),
                "changed": changed_fields(unpack(before), unpack(after), names),
            }
            for key, before, after in rows
        ]
    return [schema.to_dict(after if kind == "added" else before) for _, before, after in rows]


def blame_json(key: str, blamed: dict[str, history.Version], schema: Schema) -> dict[str, Any]:
    """{"key", "fields": {name: {"version", "change_id", "submitter", "approver", "at"} or null}}."""
    fields = {}
    for name in schema.names:
        v = blamed.get(name)
        fields[name] = (
            None
            if v is None
            else {
                "version": v.version,
                "change_id": v.change_id,
                "submitter": v.request.submitter if v.request else None,
                "approver": v.request.decided_by if v.request else None,
                "at": iso(v.request.decided_at) if v.request else None,
            }
        )
    return {"key": key, "fields": fields}


# --- audit -----------------------------------------------------------------------------------


def audit_dicts_all(entries: Sequence) -> list[dict[str, Any]]:
    """Audit rows of every table → API objects, each with its `table` (its name)."""
    of = tables.of_requests([e.change_id for e in entries if e.change_id])
    out = []
    for e in entries:
        ref = of.get(e.change_id)
        schema = ref.schema if ref is not None else tables.get().schema
        out.extend(dict(d, table=ref.name if ref is not None else None) for d in audit_dicts([e], schema))
    return out


def audit_dicts(entries: Iterable, schema: Schema) -> list[dict[str, Any]]:
    """Audit rows (from audit.page) → API objects with before/after as field → value."""
    out = []
    for e in entries:
        names = json.loads(e.fields) if e.fields else list(schema.names)
        out.append(
            {
                "id": e.id,
                "action": e.action,
                "key": e.key,
                "before": schema.to_dict(e.before, names) if e.before is not None else None,
                "after": schema.to_dict(e.after, names) if e.after is not None else None,
                "change_id": e.change_id,
                "submitter": e.submitter,
                "approver": e.approver,
                "submitted_at": iso(e.submitted_at),
                "created_at": iso(e.created_at),
                "version": e.version,
                "note": e.note,
            }
        )
    return out


# --- tables ----------------------------------------------------------------------------------


def table_json(line: tables.Overview) -> dict:
    """A table in `GET /api/v1/tables`."""
    return {
        "name": line.name,
        "title": line.title,
        "rows": line.rows,
        "version": line.version,
        "pending": line.pending,
    }


# --- discussion (discussion.py) ----------------------------------------------------------------


def comment_json(comment: Comment) -> dict[str, Any]:
    """A comment for the API: {"id", "user", "at", "text", "key", "column"} (key and column null
    for a comment on the whole request), and its kind, revision and edit time."""
    return {
        "id": comment.id,
        "user": comment.user,
        "at": iso(comment.created_at),
        "text": comment.text,
        "key": comment.key,
        "column": comment.column,
        "kind": comment.kind,
        "revision": comment.revision,
        "edited_at": iso(comment.edited_at),
    }


def revision_json(result) -> tuple[dict[str, Any], int]:
    """The answer to a corrected file (discussion.RevisionResult): 201 a new revision, 200 nothing changed."""
    cr = result.change
    body = {
        "id": cr.id,
        "revision": cr.revision,
        "status": cr.status,
        "changed": result.changed,
        "summary": result.summary,
        "base_version": cr.base_version,
        "encoding": result.encoding,
        "warnings": result.warnings,
    }
    return body, 201 if result.changed else 200


def revision_diff_json(found, schema: Schema, names: list[str]) -> dict[str, Any]:
    """The staged rows that differ between two revisions (discussion.RevisionDiff), each with its
    action and values in the two revisions."""

    def staged(value: tuple[str, str | None]) -> dict[str, Any]:
        action, after = value
        return {"action": action, "after": None if after is None else dict(zip(names, unpack(after), strict=False))}

    return {
        "since": found.since,
        "until": found.until,
        "summary": found.summary,
        "added": [{"key": k, "now": staged(v)} for k, v in found.added],
        "removed": [{"key": k, "was": staged(v)} for k, v in found.removed],
        "changed": [{"key": k, "was": staged(a), "now": staged(b)} for k, a, b in found.changed],
    }


URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def linked(text: str) -> Markup:
    """Plain text for a page: escaped, with http(s) links made clickable (nothing else is markup).

    >>> str(linked('<b>see</b> https://example.com/a?b=1&c=2.'))
    '&lt;b&gt;see&lt;/b&gt; <a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">https://example.com/a?b=1&amp;c=2</a>.'
    """
    out, last = [], 0
    for found in URL.finditer(text):
        out.append(escape(text[last : found.start()]))
        url = escape(found.group(0))
        out.append(Markup('<a href="{0}" rel="noopener noreferrer nofollow">{0}</a>').format(url))
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)
