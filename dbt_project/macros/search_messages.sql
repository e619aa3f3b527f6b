{#-
  Privacy gate of the Chats dashboard (product/dashboards.md): message text is never in a mart. It is reachable only
  through the table macro `search_messages(term)`, which refuses a missing or too short term and a term without any
  letter or digit (wildcards such as '*', '%', '.*': a "show everything" search). The term is matched as a literal,
  case-insensitive substring, so '%' or '*' inside a term are not wildcards either.

  With COMPLIANCE_STORE_MESSAGE_TEXT=false the macro is dropped and stored text deleted: text then exists nowhere.
-#}

{% macro text_storage_enabled() -%}
    {{- return(env_var('COMPLIANCE_STORE_MESSAGE_TEXT', 'true') | lower not in ['0', 'false', 'no', 'off']) -}}
{%- endmacro %}

{% macro search_messages_sql(min_chars) -%}
    with guard as (
        -- one row, evaluated on every call (also when no text is stored): a refused term is an error, never "no rows"
        select case
            when term is null or length(trim(term::varchar)) < {{ min_chars }}
                then error('search_messages: the search term must have at least {{ min_chars }} characters')
            when not regexp_matches(term::varchar, '[\pL\pN]')
                then error('search_messages: wildcard-only search terms are refused')
            else lower(trim(term::varchar))
        end as needle
    )
    select t.chat_id, t.message_id, t.block_index, t.block_type, t.text
    from guard as g
    join restricted.chat_message_text as t on contains(lower(t.text), g.needle)
{%- endmacro %}

{% macro create_search_messages_macro() -%}
    {%- set has_text_table = false -%}
    {%- if execute -%}
        {%- set found = run_query("select count(*) from information_schema.tables where table_schema = 'restricted'"
                                  " and table_name = 'chat_message_text' and table_catalog = current_database()") -%}
        {%- set has_text_table = found.columns[0].values()[0] > 0 -%}
    {%- endif -%}
    {%- if text_storage_enabled() and has_text_table -%}
    create or replace macro main.search_messages(term) as table
    {{ search_messages_sql(var('search_min_term_chars', 3)) }}
    {%- elif has_text_table -%}
    drop macro table if exists main.search_messages;
    delete from restricted.chat_message_text
    {%- else -%}
    drop macro table if exists main.search_messages
    {%- endif -%}
{%- endmacro %}
