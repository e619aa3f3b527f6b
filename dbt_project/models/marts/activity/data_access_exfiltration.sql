-- Data Access and Exfiltration (dashboards.md #8): files, documents, exports, shares and reconnaissance.

with activities as (

    {{ dashboard_activities('data_access_exfiltration') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.is_reconnaissance then 'reconnaissance'
            when
                activities.event_type like 'org\_data\_export\_%' escape '\'
                or activities.event_type like 'audit\_log\_export\_%' escape '\'
                or activities.event_type = 'org_members_exported' then 'export'
            when activities.event_type like 'session\_share\_%' escape '\' then 'session_share'
            when
                activities.event_type in ('claude_artifact_sharing_updated', 'claude_artifact_published')
                then 'artifact_sharing'
            when activities.event_type like 'platform\_file\_%' escape '\' then 'platform_file'
            when activities.event_type like 'claude\_project\_document\_%' escape '\' then 'project_document'
            when activities.event_type like 'claude\_project\_file\_%' escape '\' then 'project_file'
            when activities.event_type = 'claude_project_viewed' then 'project_view'
            else 'file'
        end as access_kind,
        activities.is_reconnaissance,
        activities.event_type in (
            'group_viewed', 'group_list_viewed', 'group_member_list_viewed', 'claude_project_viewed'
        )
            as is_group_or_project_view,
        coalesce({{ field('claude_file_id') }}, {{ field('file_id') }}, {{ field('claude_project_document_id') }})
            as file_id,
        {{ field('filename') }} as filename,
        activities.action = 'uploaded' as is_upload,
        activities.action in ('viewed', 'downloaded', 'accessed') as is_view,
        {{ field('claude_project_id') }} as project_id,
        {{ field('claude_chat_id') }} as chat_id,
        coalesce({{ field('claude_artifact_id') }}, {{ field('claude_published_artifact_id') }})
            as artifact_id,
        {{ field('export_type') }} as export_type,
        {{ field('export_destination') }} as export_destination,
        {{ field('share_id') }} as share_id,
        {{ field('access_level') }} as access_level,
        {{ field('audience') }} as audience,
        {{ field('group_id') }} as group_id,
        {{ field('user_id') }} as target_user_id
    from activities

)

select * from final
