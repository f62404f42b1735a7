"""The discussion of change requests: comments, revisions and the staged rows revisions replaced."""

from __future__ import annotations

from sqlalchemy import delete, func, select, text

from models import ChangeRequest, Comment, MergeConflict, PendingChange, Revision, db


def add_comment(**values) -> Comment:
    """A new comment (its id assigned); the caller commits."""
    comment = Comment(**values)
    db.session.add(comment)
    db.session.flush()
    return comment


def get_comment(comment_id: int) -> Comment | None:
    return db.session.get(Comment, comment_id)


def comments_of(change_id: int) -> list[Comment]:
    """A request's comments in the order they were written (deleted ones included)."""
    return list(db.session.scalars(select(Comment).where(Comment.change_id == change_id).order_by(Comment.id)))


def comment_counts(change_id: int) -> dict[str, int]:
    """{key: comments on that row or one of its cells}, deleted ones not counted."""
    query = (
        select(Comment.key, func.count())
        .where(Comment.change_id == change_id, Comment.key.is_not(None), Comment.deleted_at.is_(None))
        .group_by(Comment.key)
    )
    return dict(db.session.execute(query).all())


def has_staged_key(change_id: int, key: str) -> bool:
    """Does the request stage a change of `key` (or hold a conflict about it)?"""
    for model in (PendingChange, MergeConflict):
        found = db.session.scalar(
            select(model.id).where(model.change_id == change_id, model.key == key).limit(1)  # type: ignore[attr-defined]
        )
        if found is not None:
            return True
    return False


def add_revision(**values) -> Revision:
    revision = Revision(**values)
    db.session.add(revision)
    db.session.flush()
    return revision


def revisions_of(change_id: int) -> list[Revision]:
    return list(db.session.scalars(select(Revision).where(Revision.change_id == change_id).order_by(Revision.number)))


def staged_map(change_id: int) -> dict[str, tuple[str, str | None]]:
    """{key: (action, after)} of a request's staged rows now."""
    rows = db.session.execute(
        text("SELECT key, action, after FROM pending_changes WHERE change_id = :id"), {"id": change_id}
    )
    return {key: (action, after) for key, action, after in rows}


def revision_map(change_id: int, revision: int) -> dict[str, tuple[str, str | None]]:
    """{key: (action, after)} of the staged rows of an earlier revision of a request."""
    rows = db.session.execute(
        text("SELECT key, action, after FROM revision_rows WHERE change_id = :id AND revision = :rev"),
        {"id": change_id, "rev": revision},
    )
    return {key: (action, after) for key, action, after in rows}


def keep_staged_rows(change_id: int, revision: int) -> None:
    """Copy a request's staged rows into revision_rows as revision `revision`, then delete them
    and the request's conflicts (a new revision stages its own). The caller commits."""
    db.session.execute(
        text(
            "INSERT INTO revision_rows (change_id, revision, action, key, before, after)"
            " SELECT change_id, :rev, action, key, before, after FROM pending_changes WHERE change_id = :id"
        ),
        {"id": change_id, "rev": revision},
    )
    db.session.execute(delete(PendingChange).where(PendingChange.change_id == change_id))
    db.session.execute(delete(MergeConflict).where(MergeConflict.change_id == change_id))


def set_status(change_id: int, status: str, from_statuses: tuple[str, ...]) -> bool:
    """Move a request to `status` only while it is in one of `from_statuses`; False when it was not
    (someone decided it a moment ago)."""
    result = db.session.execute(
        db.update(ChangeRequest)
        .where(ChangeRequest.id == change_id, ChangeRequest.status.in_(from_statuses))
        .values(status=status)
    )
    return result.rowcount == 1
