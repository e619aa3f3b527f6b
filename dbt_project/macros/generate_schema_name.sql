{#- Schemas are named exactly as configured (`marts`, `staging`, ...), not `<target schema>_marts`: BI users and
    the panel queries address `marts.<dashboard>`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
