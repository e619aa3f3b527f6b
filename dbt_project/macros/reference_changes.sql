{#-
  Reference changes reach history (docs/reference-changes.md).

  int_reference_versions records every change of a reference key (activity type, embargoed country, IP, user agent)
  with the time of the dbt run that saw it. Each model that joins references (int_activities, meta
  `rebuilds_on_reference_change`) or copies their columns (the activity marts) keeps in
  intermediate.reference_applied the change time it has applied through. An incremental run then rebuilds, besides
  its window, exactly the rows whose keys changed since: delete_window and window_filter (incremental_window.sql)
  add `or <rows of changed keys>`. int_activities applies every recorded change; a mart applies the changes
  int_activities has applied (so it never copies rows that are not rebuilt yet).

  Keys first seen (change `added`) rebuild nothing, except an embargoed country: an IP, user agent or activity type
  is recorded by the run that loads its first rows (the ingestion enriches before loading), so no built row can
  carry it; a country added to the embargo list has history.
-#}

{% macro create_reference_applied() -%}
    create schema if not exists intermediate;
    create table if not exists intermediate.reference_applied (
        model              varchar primary key,
        applied_through    timestamptz,
        dbt_invocation_id  varchar,
        applied_at         timestamptz
    );
    create table if not exists intermediate.rewritten_windows (
        model              varchar,
        dbt_invocation_id  varchar,
        created_5min       timestamptz
    )
{%- endmacro %}

{% macro rebuilds_on_reference_change() -%}
    {{- return((config.get('meta') or {}).get('rebuilds_on_reference_change', false)) -}}
{%- endmacro %}

{#- Latest change this model may apply: all recorded ones for int_activities, else what int_activities applied. -#}
{% macro reference_changes_upper_bound() -%}
    {%- if this.name == 'int_activities' -%}
    (select max(changed_at) from intermediate.int_reference_versions)
    {%- else -%}
    (select max(applied_through) from intermediate.reference_applied where model = 'int_activities')
    {%- endif -%}
{%- endmacro %}

{#- (applied_through, upper bound) as text when this incremental run has reference changes to apply, else none.
    Only changes that rebuild rows count (those reference_changed_rows matches): keys first seen, recorded by nearly
    every ingestion, would otherwise add `or <changed rows>` to every 5-minute run, a scan of all history. -#}
{% macro pending_reference_changes() -%}
    {%- if not execute or not is_incremental() or not rebuilds_on_reference_change() -%}{{ return(none) }}{%- endif -%}
    {%- set applied = "coalesce((select max(applied_through) from intermediate.reference_applied where model = '"
                      ~ this.name ~ "'), '-infinity'::timestamptz)" -%}
    {%- set result = run_query(
        "select " ~ applied ~ "::varchar, " ~ reference_changes_upper_bound() ~ "::varchar, "
        ~ "exists (select 1 from intermediate.int_reference_versions where changed_at > " ~ applied
        ~ " and changed_at <= " ~ reference_changes_upper_bound()
        ~ " and (change_kind <> 'added' or reference = 'embargoed_regions'))") -%}
    {%- set row = result.rows[0] -%}
    {%- if row[2] -%}{{ return([row[0], row[1]]) }}{%- endif -%}
    {{- return(none) -}}
{%- endmacro %}

{#- The rows (of any relation with event_type, ip_address and user_agent) whose reference keys changed in
    (applied_through, upper bound]. -#}
{% macro reference_changed_rows(pending) -%}
    {%- set changes -%}
        select reference_key from intermediate.int_reference_versions
        where changed_at > '{{ pending[0] }}'::timestamptz and changed_at <= '{{ pending[1] }}'::timestamptz
    {%- endset -%}
    (event_type in ({{ changes }} and reference = 'activity_catalog' and change_kind <> 'added')
     or ip_address in ({{ changes }} and reference = 'ip_geolocation' and change_kind <> 'added')
     or user_agent in ({{ changes }} and reference = 'user_agents' and change_kind <> 'added')
     or ip_address in (select ip_address from staging.stg_ip_geolocation
                       where geo_country_iso in ({{ changes }} and reference = 'embargoed_regions')))
{%- endmacro %}

{#- Post-hook: this model now reflects the references through the upper bound (a full build reflects all of them). -#}
{% macro record_reference_applied() -%}
    {%- if rebuilds_on_reference_change() -%}
    insert or replace into intermediate.reference_applied
    select '{{ this.name }}', {{ reference_changes_upper_bound() }}, '{{ invocation_id }}', now()
    {%- else -%}
    select 1 as no_reference_columns
    {%- endif -%}
{%- endmacro %}

{#- claude_usage shows a chat's model from the chats data (by chat id), which the chats ingestion may store or
    re-fetch after the chat's events were built. Post-hook of claude_usage: the rows of the chats changed since it
    last applied them take the chat's model (what a rebuild gives: the chat's model wins over the event's), then the
    newest chat change is recorded as applied. The 5-minute windows of the rewritten rows go to
    intermediate.rewritten_windows (this invocation's id): claude_usage_chats_5min recomputes them and the marts build
    records them for the serving publish (pipeline/warehouse/mart_windows.py), without scanning the mart. Cost: a
    look at the chats changed since the last run; only when there are some, a probe of claude_usage's chat_id
    column (the rows of those chats, anywhere in history). -#}
{% macro apply_chat_model_changes() -%}
    {%- set key = this.name ~ ':chat_model' -%}
    {%- set changed_chats -%}
        select chat_id, model
        from {{ ref('stg_chats') }}
        where model is not null and chat_changed_at > coalesce(
            (select max(applied_through) from intermediate.reference_applied where model = '{{ key }}'),
            '-infinity'::timestamptz)
    {%- endset -%}
    {%- if execute and is_incremental() and run_query("select exists (" ~ changed_chats ~ ")").rows[0][0] -%}
    insert into intermediate.rewritten_windows
    select distinct '{{ this.name }}', '{{ invocation_id }}', usage.created_5min
    from {{ this }} as usage
    inner join ({{ changed_chats }}) as changed_chats on usage.chat_id = changed_chats.chat_id
    where usage.model is distinct from changed_chats.model;
    update {{ this }} as usage
    set model = changed_chats.model, dbt_invocation_id = '{{ invocation_id }}'
    from ({{ changed_chats }}) as changed_chats
    where usage.chat_id = changed_chats.chat_id and usage.model is distinct from changed_chats.model;
    {% endif -%}
    insert or replace into intermediate.reference_applied
    select '{{ key }}', max(chat_changed_at), '{{ invocation_id }}', now() from {{ ref('stg_chats') }}
{%- endmacro %}
