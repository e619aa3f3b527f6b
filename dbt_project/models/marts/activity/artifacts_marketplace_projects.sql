-- Artifacts, Marketplace and Projects (dashboards.md #4): lifecycle of artifacts, published artifacts, marketplaces,
-- projects and design projects.

with activities as (

    {{ dashboard_activities('artifacts_marketplace_projects') }}

),

audiences as (

    -- the API sends `audience` as an object ({"type": "anyone_with_link"}), a list of them or a plain string
    -- (unqualified names here: the lambdas' parameters cannot be qualified)
    select
        *,
        case json_type(raw -> '$.audience')
            when 'ARRAY'
                then list_filter(json_extract_string(raw, '$.audience[*].type'), lambda kind: kind is not null)
            when 'OBJECT' then list_filter([raw ->> '$.audience.type'], lambda kind: kind is not null)
            when 'VARCHAR' then [raw ->> '$.audience']
        end as audience_types
    from activities

),

final as (

    select
        {{ activity_common_columns('audiences') }},
        case
            when audiences.event_type like 'marketplace\_%' escape '\' then 'marketplace'
            when audiences.event_type like 'design\_project\_%' escape '\' then 'design_project'
            when audiences.event_type like 'claude\_project\_%' escape '\' then 'project'
            else 'artifact'
        end as resource_group,
        case
            when audiences.action = 'failed' then 'failed'
            when audiences.action in ('published', 'unpublished') then 'published'
            when
                audiences.action = 'shared'
                or audiences.resource_kind like '%invite%'
                or audiences.resource_kind like '%member%'
                then 'shared'
            when audiences.action in ('viewed', 'accessed') then 'viewed'
            when audiences.action in ('deleted', 'archived') then 'deleted'
            when audiences.action in ('created', 'duplicated', 'uploaded') then 'created'
            else 'updated'
        end as lifecycle_action,
        {{ field('claude_artifact_id', 'audiences') }} as artifact_id,
        {{ field('claude_artifact_version_id', 'audiences') }} as artifact_version_id,
        {{ field('claude_published_artifact_id', 'audiences') }} as published_artifact_id,
        {{ field('claude_project_id', 'audiences') }} as project_id,
        {{ field('design_project_id', 'audiences') }} as design_project_id,
        {{ field('marketplace_id', 'audiences') }} as marketplace_id,
        coalesce(
            {{ field('claude_published_artifact_id', 'audiences') }}, {{ field('claude_artifact_id', 'audiences') }},
            {{ field('design_project_id', 'audiences') }},
            {{ field('marketplace_id', 'audiences') }},
            {{ field('claude_project_id', 'audiences') }}
        )
            as resource_id,
        {{ field('title', 'audiences') }} as title,
        {{ field('artifact_type', 'audiences') }} as artifact_type,
        {{ field('filename', 'audiences') }} as filename,
        array_to_string(audiences.audience_types, ', ') as audience,
        coalesce(
            {{ field('new_mode', 'audiences') }},
            {{ field('new_scope', 'audiences') }},
            {{ field('new_link_permission', 'audiences') }}
        )
            as sharing_mode,
        -- the API sends `audience` as an object ({"type": "anyone_with_link"}) or a list of them: public when any
        -- of its types opens the resource beyond the organization; not public when it names only others; NULL
        -- when the record says nothing about its audience
        coalesce(
            {{ bool_field('is_public', 'audiences') }},
            case
                when len(audiences.audience_types) > 0
                    then list_has_any(audiences.audience_types, ['anyone_with_link', 'public', 'anyone', 'external'])
            end,
            case when lower({{ field('new_scope', 'audiences') }}) in ('public', 'anyone', 'external') then true end)
            as is_public,
        audiences.event_type in (
            'claude_artifact_published', 'claude_artifact_sharing_updated',
            'claude_artifact_external_sharing_permission_updated', 'claude_published_artifact_deleted',
            'claude_project_sharing_updated', 'design_project_sharing_updated',
            'design_project_published', 'design_project_unpublished',
            'design_project_artifact_published'
        ) as is_publishing_or_sharing_change,
        {{ field('invitee_email', 'audiences') }} as invitee_email
    from audiences

)

select * from final
