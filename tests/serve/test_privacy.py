"""Privacy gate of the Chats dashboard: no message text in any mart, text only through search_messages(term) which
refuses empty and wildcard terms, and COMPLIANCE_STORE_MESSAGE_TEXT=false removes text everywhere."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from pipeline.defs.serve.assets import marts_file
from pipeline.defs.transform.assets import dbt_activity_marts
from pipeline.serving.publish import files_directory, publish
from tests.transform.marts_build import copy_warehouse, resources


def _texts(warehouse) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return [r[0] for r in conn.execute("SELECT text FROM restricted.chat_message_text").fetchall()]


def _string_cells(conn, table: str) -> str:
    """Every value of the table rendered as text (lists and structs included), one big haystack."""
    return "\n".join(str(row) for row in conn.execute(f"SELECT * FROM {table}").fetchall())


def test_chats_mart_carries_no_message_text(built):
    texts = _texts(built.warehouse)
    assert len(texts) > 100
    with duckdb.connect(str(built.warehouse), read_only=True) as conn:
        haystack = _string_cells(conn, "marts.chats")
        columns = {r[0] for r in conn.execute("DESCRIBE marts.chats").fetchall()}
        assert conn.execute("SELECT count(*), sum(text_chars) FROM marts.chats").fetchone()[1] > 0
    assert "text" not in columns and "content" not in columns
    # sentences of the conversations: none appears in the mart (file names or titles may share single words)
    leaked = [t for t in texts if len(t) >= 30 and t[:30] in haystack]
    assert not leaked, leaked[:3]


@pytest.mark.parametrize("term", ["", "   ", "*", "%", "%%", "**", ".*", "_", "?", "  %*  ", "ab", None])
def test_search_refuses_empty_short_and_wildcard_terms(built, term):
    with duckdb.connect(str(built.warehouse), read_only=True) as conn, pytest.raises(duckdb.Error,
                                                                                     match="search_messages"):
        conn.execute("SELECT * FROM search_messages($term)", {"term": term}).fetchall()


def test_search_finds_text_case_insensitively_and_literally(built):
    text = next(t for t in _texts(built.warehouse) if len(t) > 40)
    word = max(text.split(), key=len)
    with duckdb.connect(str(built.warehouse), read_only=True) as conn:
        hits = conn.execute("SELECT text FROM search_messages($t)", {"t": word.upper()}).fetchall()
        assert hits and all(word.lower() in h[0].lower() for h in hits)
        # '%' inside a term is a character, not a wildcard
        assert conn.execute("SELECT count(*) FROM search_messages('%' || $t || '%')", {"t": word}).fetchone()[0] \
            <= len(hits)


def test_search_also_works_in_the_published_file_whose_text_files_are_private(built, tmp_path):
    publish(built.warehouse, tmp_path / "marts.duckdb", include_message_text=True)
    with duckdb.connect(str(tmp_path / "marts.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM search_messages('the')").fetchone()[0] > 0
        with pytest.raises(duckdb.Error, match="wildcard"):
            conn.execute("SELECT * FROM search_messages('***')").fetchall()
    text_files = list(files_directory(tmp_path / "marts.duckdb").joinpath("restricted").rglob("*.parquet"))
    assert text_files and all(p.stat().st_mode & 0o077 == 0 for p in text_files)


def test_no_text_switch_removes_text_everywhere(built, tmp_path, monkeypatch):
    warehouse = copy_warehouse(built, tmp_path)
    assert _texts(warehouse)
    monkeypatch.setenv("COMPLIANCE_STORE_MESSAGE_TEXT", "false")
    serving = tmp_path / "bi" / "marts.duckdb"
    # the next marts run after the switch: dbt drops the search macro and deletes stored text; the publish that
    # follows copies neither
    result = dg.materialize([dbt_activity_marts, marts_file], resources=resources(built.base_url, warehouse),
                            run_config={"ops": {"serve__marts_file": {"config": {"serving_path": str(serving)}}}})
    assert result.success
    assert _texts(warehouse) == []
    for path in (warehouse, serving):
        with duckdb.connect(str(path), read_only=True) as conn:
            macros = conn.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'search_messages'"
                                  ).fetchone()[0]
            assert macros == 0, path
            restricted = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'restricted' "
                                      "AND database_name = current_database()").fetchone()[0]
            assert restricted == (1 if path == warehouse else 0)
    meta = result.asset_materializations_for_node("serve__marts_file")[0].metadata
    assert meta["message_text_rows"].value == "not published"
    assert not list(files_directory(serving).joinpath("restricted").rglob("*.parquet"))
