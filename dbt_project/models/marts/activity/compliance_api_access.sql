-- Compliance API Access (dashboards.md #7): every call to the Compliance API, with its endpoint type.

with activities as (

    {{ dashboard_activities('compliance_api_access') }}

),

endpoints as (

    select * from {{ ref('compliance_api_endpoints') }}

),

requests as (

    select
        activities.*,
        {{ field('request_id') }} as request_id,
        upper({{ field('request_method') }}) as request_method,
        {{ int_field('status_code') }} as status_code,
        {{ field('url') }} as url,
        regexp_extract({{ field('url') }}, '^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*)?([^?#]*)', 1) as url_path,
        {{ field('request_body') }} is not null as has_request_body
    from activities

),

classified as (

    select
        requests.activity_id,
        endpoints.endpoint_type
    from requests
    inner join endpoints on regexp_matches(requests.url_path, endpoints.path_regex)
    qualify row_number() over (partition by requests.activity_id order by endpoints.priority) = 1

),

final as (

    select
        {{ activity_common_columns('requests') }},
        requests.request_id,
        requests.request_method,
        requests.status_code,
        case
            when requests.status_code is null then null
            else (requests.status_code // 100)::varchar || 'xx'
        end as status_class,
        requests.status_code is not null and not (requests.status_code between 200 and 299)
            as is_error_status,
        requests.url,
        requests.url_path,
        coalesce(classified.endpoint_type, 'other') as endpoint_type,
        requests.has_request_body
    from requests
    left join classified on requests.activity_id = classified.activity_id

)

select * from final
