"""Renaming every stored name that starts with one prefix: absolute paths becoming a library root's names.

A database written before a host named its library roots holds that
host's absolute paths. Left so, the next rescan would queue each file again
under its root-relative name and `tracks` would list it twice. The store
knows no mounts: the daemon says which prefix becomes which, and this
rewrites the names set-wise, in one transaction, so a million rows take one
statement per table rather than a million round trips.

A path already stored under both names (a file seen again after the roots
were set) keeps the newer, root-relative row; its absolute row goes, as it
names the same file (the content and its analyses stay, found by hash).
Names that are not UTF-8 (raw_path set) are left as they are: their exact
bytes are the key, and they are rare enough not to need rewriting.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from .transactions import write_transaction

_ACTIVE = "('queued', 'running', 'retry_wait')"
# The casts: PostgreSQL has substr(text, integer) only, and a driver may send a Python int as bigint.
_NEW = ":new || substr({table}.path, CAST(:cut AS INTEGER))"
_UNDER = "substr({table}.path, 1, CAST(:n AS INTEGER)) = :old AND {table}.raw_path IS NULL"


def replace_prefix(engine: Engine, old: str, new: str) -> int:
    """Rename names that start with `old` to start with `new` instead (jobs, file_paths, files, sidecar paths);
    returns how many file_paths rows were renamed."""
    values = {"old": old, "new": new, "n": len(old), "cut": len(old) + 1}
    taken = (f"EXISTS (SELECT 1 FROM file_paths AS taken WHERE taken.path = {_NEW.format(table='file_paths')}"
             " AND taken.raw_path IS NULL)")
    with write_transaction(engine) as conn:
        renamed = conn.execute(text(f"UPDATE file_paths SET path = {_NEW.format(table='file_paths')}"
                                    f" WHERE {_UNDER.format(table='file_paths')} AND NOT {taken}"), values).rowcount
        conn.execute(text(f"DELETE FROM file_paths WHERE {_UNDER.format(table='file_paths')} AND {taken}"), values)
        # Finished jobs are history and may share a name; an active one must not meet another active one.
        conn.execute(text(
            f"UPDATE jobs SET path = {_NEW.format(table='jobs')} WHERE {_UNDER.format(table='jobs')}"
            f" AND (jobs.state NOT IN {_ACTIVE} OR NOT EXISTS (SELECT 1 FROM jobs AS taken"
            f" WHERE taken.path = {_NEW.format(table='jobs')} AND taken.raw_path IS NULL"
            f" AND taken.state IN {_ACTIVE}))"), values)
        conn.execute(text(f"UPDATE files SET path = {_NEW.format(table='files')}"
                          " WHERE substr(files.path, 1, CAST(:n AS INTEGER)) = :old"), values)
        conn.execute(text("UPDATE analyses SET sidecar_path = :new"
                          " || substr(analyses.sidecar_path, CAST(:cut AS INTEGER))"
                          " WHERE substr(analyses.sidecar_path, 1, CAST(:n AS INTEGER)) = :old"), values)
        return renamed
