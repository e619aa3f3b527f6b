{#- Whether a table or view exists in the warehouse right now (false while parsing). Used for sources written by
    other parts of the pipeline that may not exist yet on a fresh warehouse (monitors.alerts). -#}
{% macro relation_exists(schema, name) -%}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- set found = run_query("select count(*) from information_schema.tables where table_catalog = current_database()"
                              ~ " and table_schema = '" ~ schema ~ "' and table_name = '" ~ name ~ "'") -%}
    {{- return(found.columns[0].values()[0] > 0) -}}
{%- endmacro %}
