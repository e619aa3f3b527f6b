-- Artifacts, Marketplace and Projects (dashboards.md #4): lifecycle of artifacts, published artifacts, marketplaces, projects and design projects.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'artifacts_marketplace_projects') {{ window_filter('created_at') }}

),

payloads as (

    select
        activity_id,
        raw,
        case json_type(raw -> '$.audience')
            when 'ARRAY' then list_filter(json_extract_string(raw, '$.audience[*].type'), lambda t: t is not null)
            when 'OBJECT' then list_filter([raw ->> '$.audience.type'], lambda t: t is not null)
            when 'VARCHAR' then [raw ->> '$.audience']
        end                                                         as audience_types
    from {{ ref('stg_activities') }}
    -- only this mart's activities: a chunk's join never holds every raw payload of the range
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

final as (

    select
        {{ activity_common_columns('a') }},
        case
            when a.event_type like 'marketplace\_%' escape '\' then 'marketplace'
            when a.event_type like 'design\_project\_%' escape '\' then 'design_project'
            when a.event_type like 'claude\_project\_%' escape '\' then 'project'
            else 'artifact'
        end                                                         as resource_group,
        case
            when a.action = 'failed' then 'failed'
            when a.action in ('published', 'unpublished') then 'published'
            when a.action = 'shared' or a.resource_kind like '%invite%' or a.resource_kind like '%member%'
                then 'shared'
            when a.action in ('viewed', 'accessed') then 'viewed'
            when a.action in ('deleted', 'archived') then 'deleted'
            when a.action in ('created', 'duplicated', 'uploaded') then 'created'
            else 'updated'
        end                                                         as lifecycle_action,
        {{ field('claude_artifact_id') }}                           as artifact_id,
        {{ field('claude_artifact_version_id') }}                   as artifact_version_id,
        {{ field('claude_published_artifact_id') }}                 as published_artifact_id,
        {{ field('claude_project_id') }}                            as project_id,
        {{ field('design_project_id') }}                            as design_project_id,
        {{ field('marketplace_id') }}                               as marketplace_id,
        coalesce({{ field('claude_published_artifact_id') }}, {{ field('claude_artifact_id') }},
                 {{ field('design_project_id') }}, {{ field('marketplace_id') }}, {{ field('claude_project_id') }})
                                                                    as resource_id,
        {{ field('title') }}                                        as title,
        {{ field('artifact_type') }}                                as artifact_type,
        {{ field('filename') }}                                     as filename,
        array_to_string(p.audience_types, ', ')                    as audience,
        coalesce({{ field('new_mode') }}, {{ field('new_scope') }}, {{ field('new_link_permission') }})
                                                                    as sharing_mode,
        -- the API sends `audience` as an object ({"type": "anyone_with_link"}) or a list of them: public when any
        -- of its types opens the resource beyond the organization; not public when it names only others; NULL
        -- when the record says nothing about its audience
        coalesce({{ bool_field('is_public') }},
                 case when len(p.audience_types) > 0
                      then list_has_any(p.audience_types, ['anyone_with_link', 'public', 'anyone', 'external']) end,
                 case when lower({{ field('new_scope') }}) in ('public', 'anyone', 'external') then true end)
                                                                    as is_public,
        a.event_type in ('claude_artifact_published', 'claude_artifact_sharing_updated',
                         'claude_artifact_external_sharing_permission_updated', 'claude_published_artifact_deleted',
                         'claude_project_sharing_updated', 'design_project_sharing_updated',
                         'design_project_published', 'design_project_unpublished',
                         'design_project_artifact_published')
                                                                    as is_publishing_or_sharing_change,
        {{ field('invitee_email') }}                                as invitee_email
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

)

select * from final
