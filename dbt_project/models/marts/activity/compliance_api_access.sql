-- Compliance API Access (dashboards.md #7): every call to the Compliance API, with its endpoint type.

with activities as (

    select * from {{ ref('int_activities') }}
    where list_contains(dashboards, 'compliance_api_access') {{ window_filter('created_at') }}

),

payloads as (

    select activity_id, raw from {{ ref('stg_activities') }}
    where true {{ window_filter('created_at') }} and activity_id in (select activity_id from activities)

),

endpoints as (

    select * from {{ ref('compliance_api_endpoints') }}

),

requests as (

    select
        a.activity_id,
        {{ field('request_id') }}                                   as request_id,
        upper({{ field('request_method') }})                        as request_method,
        {{ int_field('status_code') }}                              as status_code,
        {{ field('url') }}                                          as url,
        regexp_extract({{ field('url') }}, '^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*)?([^?#]*)', 1)
                                                                    as url_path,
        {{ field('request_body') }} is not null                     as has_request_body
    from activities as a
    join payloads as p on p.activity_id = a.activity_id

),

classified as (

    select r.activity_id, e.endpoint_type
    from requests as r
    join endpoints as e on regexp_matches(r.url_path, e.path_regex)
    qualify row_number() over (partition by r.activity_id order by e.priority) = 1

),

final as (

    select
        {{ activity_common_columns('a') }},
        r.request_id,
        r.request_method,
        r.status_code,
        case when r.status_code is null then null
             else cast(r.status_code // 100 as varchar) || 'xx' end as status_class,
        r.status_code is not null and not (r.status_code between 200 and 299)
                                                                    as is_error_status,
        r.url,
        r.url_path,
        coalesce(c.endpoint_type, 'other')                          as endpoint_type,
        r.has_request_body
    from activities as a
    join requests as r on r.activity_id = a.activity_id
    left join classified as c on c.activity_id = a.activity_id

)

select * from final
