-- MCP Servers, Integrations and GitHub Enterprise (dashboards.md #10).

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'mcp_integrations_github') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

final as (

    select
        {{ activity_common_columns('a') }},
        case
            when a.event_type like 'mcp\_%' escape '\' then 'mcp'
            when a.event_type like 'claude\_gdrive\_%' escape '\' then 'google_drive'
            when a.event_type like 'ghe\_%' escape '\' then 'github_enterprise'
            when a.event_type like 'claude\_github\_%' escape '\' or a.event_type like 'github\_%' escape '\'
                then 'github'
            when a.event_type like 'gitlab\_%' escape '\' then 'gitlab'
            when a.event_type like 'slack\_%' escape '\' then 'slack'
            else 'connector'
        end                                                         as integration_kind,
        coalesce({{ field('mcp_server_id') }}, {{ field('mcp_directory_server_id') }})
                                                                    as mcp_server_id,
        coalesce({{ field('mcp_server_name') }}, {{ field('mcp_directory_server_name') }})
                                                                    as mcp_server_name,
        case a.event_type when 'mcp_server_created' then 1 when 'mcp_server_deleted' then -1 else 0 end
                                                                    as mcp_server_delta,
        {{ field('integration_type') }}                             as integration_type,
        {{ field('integration_id') }}                               as integration_id,
        {{ field('repository_name') }}                              as repository_name,
        {{ field('organization_name') }}                            as github_organization,
        {{ field('github_username') }}                              as github_username,
        {{ field('hostname') }}                                     as hostname,
        {{ field('slack_team_id') }}                                as slack_team_id,
        {{ field('tool_name') }}                                    as tool_name,
        {{ field('max_permission') }}                               as max_permission,
        {{ field('decision') }}                                     as decision,
        coalesce({{ bool_field('enabled') }}, {{ bool_field('enforced') }})
                                                                    as enabled
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

)

select * from final
