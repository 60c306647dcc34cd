"""A screen over the SQL text of PostgreSQL integration queries: one read-only statement, none of the
functions that reach beyond the database.

PostgreSQL itself is the real defense (the role is checked not to be a superuser nor to hold server
file or program access, and each query runs in a READ ONLY transaction with a statement timeout); this
screen refuses the rest of what a query should never do even where a role was granted it: server
files (pg_read_file, pg_ls_dir, pg_stat_file, lo_import...), other servers (dblink), other sessions
(pg_terminate_backend), settings (set_config: it could lift the statement timeout), SQL run from a
string (query_to_xml), COPY, role changes and more than one statement.

The text is tokenized the way PostgreSQL reads it: strings ('..', E'..', $tag$..$tag$) and comments
(--, nested /* */) are skipped, so names inside them do not count and names cannot hide behind them;
quoted identifiers ("pg_read_file") count as the names they are. U&"..." identifiers are refused: their
escapes could spell any name.

pg_sleep is allowed: the statement timeout bounds it like any slow query.
"""

from __future__ import annotations

import re

START = re.compile(r"^(select|with|values|table|show|explain)$")
DENIED_NAMES = frozenset({
    "pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_logdir_ls", "pg_current_logfile",
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
    "pg_notify", "set_config", "copy", "dblink", "pg_import_system_collations",
})
DENIED_PREFIXES = ("lo_", "dblink_", "pg_ls_", "pg_file_", "query_to_xml", "cursor_to_xml", "pg_replication_",
                   "pg_create_", "pg_drop_", "pg_switch_", "pg_backup_", "pg_wal_replay_")
WORD = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")
DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")


def tokens(sql: str) -> list[str]:
    """Names (lower-cased; a quoted identifier as written) and punctuation, without strings and comments.

    ValueError for an unterminated string, identifier or comment, or a U&"..." identifier.
    """
    found: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while depth:
                if i >= n:
                    raise ValueError("an unterminated /* comment")
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c in "uU" and sql.startswith("&\"", i + 1):
            raise ValueError('U&"..." identifiers are not accepted; write the name plainly')
        elif c in "eE" and sql.startswith("'", i + 1):
            i = _skip_string(sql, i + 1, backslash=True)
        elif c == "'":
            i = _skip_string(sql, i, backslash=False)
        elif c == '"':
            end, name = i + 1, []
            while True:
                close = sql.find('"', end)
                if close < 0:
                    raise ValueError('an unterminated "identifier"')
                name.append(sql[end:close])
                if sql.startswith('"', close + 1):  # "" is a quote inside the name
                    name.append('"')
                    end = close + 2
                    continue
                i = close + 1
                break
            found.append("".join(name).lower())
        elif c == "$" and (tag := DOLLAR_TAG.match(sql, i)):
            close = sql.find(tag.group(0), tag.end())
            if close < 0:
                raise ValueError("an unterminated $$ string")
            i = close + len(tag.group(0))
        elif word := WORD.match(sql, i):
            found.append(word.group(0).lower())
            i = word.end()
        else:
            found.append(c)
            i += 1
    return found


def _skip_string(sql: str, start: int, *, backslash: bool) -> int:
    """The index after the string literal whose opening quote is at `start`."""
    i = start + 1
    while i < len(sql):
        if backslash and sql[i] == "\\":
            i += 2
        elif sql[i] == "'":
            if sql.startswith("'", i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise ValueError("an unterminated 'string'")


def refusal(sql: str) -> str | None:
    """Why a query is refused, or None for one that may run."""
    try:
        words = tokens(sql)
    except ValueError as exc:
        return str(exc)
    while words and words[-1] == ";":
        words.pop()
    if not words or not START.match(words[0]):
        return "must be one read-only statement (SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN)"
    if ";" in words:
        return "must be one statement: no ';' between statements"
    for previous, word in zip(["", *words], words, strict=False):
        if previous == "set" and word in ("role", "session", "local"):
            return "may not change the role or settings (SET ROLE, SET SESSION AUTHORIZATION)"
        if word in DENIED_NAMES or word.startswith(DENIED_PREFIXES):
            return (f"{word} is not allowed: integration queries may not reach server files, large objects, "
                    "other servers or sessions, settings, or run SQL from strings")
    return None
