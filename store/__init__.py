"""All SQL, and nothing else: the storage layer under the domain modules.

- `base`: connections, snapshots and batched reads shared by the others.
- `table`: the shared table's rows (`datasets`) and its version: bulk read, streamed export, search.
- `changes`: change requests and their staged rows: COPY staging, paged reads, set-based apply.
- `audit`: the audit log: the one place audit rows are written, and its filtered reads.
- `accounts`: users, API tokens, sign-in failures, error files.

Callers own the transaction (`db.session`); nothing here commits. Bulk paths use the DB-API
driver directly (PostgreSQL COPY, SQLite executemany) and set-based statements, never an ORM
object per row; the ORM serves the small tables.
"""
