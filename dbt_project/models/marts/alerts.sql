{{ config(tags=['partitioned']) }}

-- Alerts raised by the monitors (one row per incident; the no-data monitor's too), with their lifecycle state
-- (open / acknowledged / resolved, who, when, note), for BI tools and the Activity Overview threat panel.
-- Rebuilt on every run: the monitors write monitors.alerts at any time, and it stays small. The monitors create
-- that table (pipeline/monitors/alerts.py); until they first run it may not exist, and the mart is then empty.

{%- set alerts_source = source('monitors', 'alerts') %}

with alerts as (

    {% if relation_exists('monitors', 'alerts') %}
        select
            alert_id,
            monitor,
            severity,
            group_key,
            first_event_at,
            last_event_at,
            event_count,
            threshold,
            activity_ids,
            raised_at,
            delivered_at,
            run_id,
            status,
            status_by,
            status_at,
            status_note,
            reopened_count
        from {{ alerts_source }}
    {% else %}
        select
            null::varchar as alert_id,
            null::varchar as monitor,
            null::varchar as severity,
            null::varchar as group_key,
            null::timestamptz as first_event_at,
            null::timestamptz as last_event_at,
            null::bigint as event_count,
            null::double as threshold,
            null::varchar[] as activity_ids,
            null::timestamptz as raised_at,
            null::timestamptz as delivered_at,
            null::varchar as run_id,
            null::varchar as status,
            null::varchar as status_by,
            null::timestamptz as status_at,
            null::varchar as status_note,
            null::integer as reopened_count
        where false
    {% endif %}

),

final as (

    select
        alert_id,
        monitor,
        coalesce(severity, 'critical') as severity,
        group_key,
        first_event_at,
        last_event_at,
        event_count,
        threshold,
        coalesce(activity_ids, []::varchar[]) as activity_ids,
        len(coalesce(activity_ids, []::varchar[])) as activity_count,
        raised_at,
        (timezone('UTC', raised_at))::date as raised_date,
        date_trunc('hour', raised_at) as raised_hour,
        -- as of the publish: the webhook sensor may deliver after the marts were built
        delivered_at,
        run_id,
        coalesce(status, 'open') as status,
        status_by,
        status_at,
        status_note,
        coalesce(reopened_count, 0) as reopened_count
    from alerts
    qualify row_number() over (partition by alert_id order by raised_at) = 1

)

select * from final
