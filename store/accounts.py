"""Users, API tokens, failed sign-ins, error files and held uploads: small tables, read and written through the ORM."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, delete, func, select

from models import ApiToken, ErrorReport, HeldUpload, LoginFailure, User, UserGroup, db

# --- users -----------------------------------------------------------------------------------


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def add_user(username: str, password_hash: str, created_by_proxy: bool = False) -> User:
    user = User(username=username, password_hash=password_hash, created_by_proxy=created_by_proxy)
    db.session.add(user)
    return user


def bump_session_generation(user_id: int) -> None:
    """End every session of an account: the generation in their cookies no longer matches."""
    db.session.execute(db.update(User).where(User.id == user_id).values(session_generation=User.session_generation + 1))


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.username)))


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


# --- groups ----------------------------------------------------------------------------------


def find_user_by_subject(subject: str) -> User | None:
    return db.session.scalar(select(User).where(User.oidc_subject == subject))


def group_names(user_id: int) -> list[str]:
    """A user's groups, from every source, sorted, each once."""
    query = select(UserGroup.name).where(UserGroup.user_id == user_id).distinct().order_by(UserGroup.name)
    return list(db.session.scalars(query))


def groups_by_source(user_id: int, source: str) -> list[str]:
    query = select(UserGroup.name).where(UserGroup.user_id == user_id, UserGroup.source == source)
    return sorted(db.session.scalars(query))


def add_group(user_id: int, name: str, source: str) -> None:
    if db.session.get(UserGroup, (user_id, name, source)) is None:
        db.session.add(UserGroup(user_id=user_id, name=name, source=source))


def remove_group(user_id: int, name: str, source: str) -> None:
    db.session.execute(
        delete(UserGroup).where(UserGroup.user_id == user_id, UserGroup.name == name, UserGroup.source == source)
    )


def replace_groups(user_id: int, names: list[str], source: str) -> None:
    """Set one source's groups of a user to exactly `names` (the identity provider's, at each sign-in)."""
    db.session.execute(delete(UserGroup).where(UserGroup.user_id == user_id, UserGroup.source == source))
    db.session.add_all(UserGroup(user_id=user_id, name=n, source=source) for n in dict.fromkeys(names))


# --- API tokens ------------------------------------------------------------------------------


def add_token(
    user_id: int, token_hash: str, prefix: str, scope: str = "decide", expires_at: dt.datetime | None = None
) -> ApiToken:
    token = ApiToken(user_id=user_id, token_hash=token_hash, prefix=prefix, scope=scope, expires_at=expires_at)
    db.session.add(token)
    return token


def active_token(token_hash: str) -> ApiToken | None:
    return db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)))


def tokens_with_owners(username: str | None = None) -> list[tuple[ApiToken, str]]:
    """(token, owner's name) in creation order, of one user or of everyone."""
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if username:
        query = query.where(User.username == username)
    return [(t, name) for t, name in db.session.execute(query)]


def active_tokens(user_id: int, token_id: int | None = None) -> list[ApiToken]:
    """A user's tokens that are not revoked (all, or the one with `token_id`)."""
    query = select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    return list(db.session.scalars(query))


# --- failed sign-ins -------------------------------------------------------------------------


def count_failures(username: str, address: str, since: dt.datetime) -> tuple[int, int, int]:
    """Failed sign-ins since `since`: (for this user name from this address, from this address for
    any name, for this user name from any address)."""
    name, here = LoginFailure.username == username, LoginFailure.address == address
    row = db.session.execute(
        select(
            func.sum(case((name & here, 1), else_=0)),
            func.sum(case((here, 1), else_=0)),
            func.sum(case((name, 1), else_=0)),
        ).where(LoginFailure.created_at >= since, name | here)
    ).one()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def forget_failures_before(when: dt.datetime) -> int:
    """Delete failed sign-ins older than `when`; returns how many."""
    return db.session.execute(db.delete(LoginFailure).where(LoginFailure.created_at < when)).rowcount


def add_failure(username: str, address: str, forget_before: dt.datetime) -> None:
    """Record a failed sign-in and forget those older than `forget_before`."""
    db.session.add(LoginFailure(username=username[:150], address=address[:64]))
    db.session.execute(db.delete(LoginFailure).where(LoginFailure.created_at < forget_before))


# --- error files -----------------------------------------------------------------------------


def add_error_report(owner: str, filename: str, content: bytes) -> ErrorReport:
    report = ErrorReport(owner=owner, filename=filename, content=content)
    db.session.add(report)
    return report


def get_error_report(report_id: int) -> ErrorReport | None:
    return db.session.get(ErrorReport, report_id)


def delete_error_reports_before(when: dt.datetime) -> int:
    """Delete error files made before `when`; returns how many."""
    return db.session.execute(db.delete(ErrorReport).where(ErrorReport.created_at < when)).rowcount


def keep_newest_error_reports(owner: str, keep: int) -> None:
    """Delete one person's error files but the newest `keep`."""
    newest = select(ErrorReport.id).where(ErrorReport.owner == owner).order_by(ErrorReport.id.desc()).limit(keep)
    db.session.execute(db.delete(ErrorReport).where(ErrorReport.owner == owner, ErrorReport.id.not_in(newest)))


# --- uploads held for a mass-deletion confirmation -------------------------------------------


def add_held_upload(owner: str, filename: str, content: bytes) -> HeldUpload:
    held = HeldUpload(owner=owner, filename=filename, content=content)
    db.session.add(held)
    db.session.flush()
    return held


def get_held_upload(held_id: int) -> HeldUpload | None:
    return db.session.get(HeldUpload, held_id)


def delete_held_upload(held_id: int) -> None:
    db.session.execute(db.delete(HeldUpload).where(HeldUpload.id == held_id))


def delete_held_uploads_before(when: dt.datetime) -> int:
    """Delete uploads held since before `when`; returns how many."""
    return db.session.execute(db.delete(HeldUpload).where(HeldUpload.created_at < when)).rowcount


def keep_newest_held_uploads(owner: str, keep: int) -> None:
    """Delete one person's held uploads but the newest `keep`."""
    newest = select(HeldUpload.id).where(HeldUpload.owner == owner).order_by(HeldUpload.id.desc()).limit(keep)
    db.session.execute(db.delete(HeldUpload).where(HeldUpload.owner == owner, HeldUpload.id.not_in(newest)))
