-- MCP Servers, Integrations and GitHub Enterprise (dashboards.md #10).

with activities as (

    {{ dashboard_activities('mcp_integrations_github') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type like 'mcp\_%' escape '\' then 'mcp'
            when activities.event_type like 'claude\_gdrive\_%' escape '\' then 'google_drive'
            when activities.event_type like 'ghe\_%' escape '\' then 'github_enterprise'
            when
                activities.event_type like 'claude\_github\_%' escape '\'
                or activities.event_type like 'github\_%' escape '\'
                then 'github'
            when activities.event_type like 'gitlab\_%' escape '\' then 'gitlab'
            when activities.event_type like 'slack\_%' escape '\' then 'slack'
            else 'connector'
        end as integration_kind,
        coalesce({{ field('mcp_server_id') }}, {{ field('mcp_directory_server_id') }}) as mcp_server_id,
        coalesce({{ field('mcp_server_name') }}, {{ field('mcp_directory_server_name') }}) as mcp_server_name,
        case activities.event_type when 'mcp_server_created' then 1 when 'mcp_server_deleted' then -1 else 0 end
            as mcp_server_delta,
        {{ field('integration_type') }} as integration_type,
        {{ field('integration_id') }} as integration_id,
        {{ field('repository_name') }} as repository_name,
        {{ field('organization_name') }} as github_organization,
        {{ field('github_username') }} as github_username,
        {{ field('hostname') }} as hostname,
        {{ field('slack_team_id') }} as slack_team_id,
        {{ field('tool_name') }} as tool_name,
        {{ field('max_permission') }} as max_permission,
        {{ field('decision') }} as decision,
        coalesce({{ bool_field('enabled') }}, {{ bool_field('enforced') }}) as enabled
    from activities

)

select * from final
