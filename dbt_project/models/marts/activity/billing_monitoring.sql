-- Billing Monitoring (dashboards.md #2): subscription lifecycle, seats, spend limits, prepaid and recharge.

with activities as (

    {{ dashboard_activities('billing_monitoring') }}

),

final as (

    select
        {{ activity_common_columns('activities') }},
        case
            when activities.event_type like 'subscription\_%' escape '\' then 'subscription_lifecycle'
            when activities.event_type like '%spend\_limit%' escape '\' then 'spend_limit'
            when
                activities.event_type like '%auto\_recharge%' escape '\'
                or activities.event_type like '%auto\_reload%' escape '\'
                then 'recharge'
            when
                activities.event_type like 'prepaid\_%' escape '\'
                or activities.event_type = 'platform_billing_upgraded_to_prepaid'
                then 'prepaid'
            when activities.event_type like 'seat\_tier%' escape '\' then 'seats'
            when activities.event_type like 'extra\_usage\_%' escape '\' then 'extra_usage'
            else 'billing_settings'
        end as billing_group,
        {{ field('plan_type') }} as plan_type,
        {{ field('new_plan') }} as new_plan,
        {{ field('old_plan') }} as old_plan,
        coalesce({{ field('plan_type') }}, {{ field('new_plan') }}) as plan,
        {{ field('billing_interval') }} as billing_interval,
        {{ int_field('seat_count') }} as seat_count,
        {{ int_field('added_seats') }} as added_seats,
        {{ int_field('new_quantity') }} as new_quantity,
        {{ int_field('previous_quantity') }} as previous_quantity,
        {{ num_field('amount') }} as amount,
        {{ field('limit_type') }} as limit_type,
        coalesce({{ num_field('limit_usd') }}, {{ num_field('new_limit_usd') }}) as limit_usd,
        {{ field('limit_action') }} as limit_action,
        {{ field('spend_limit_id') }} as spend_limit_id,
        {{ bool_field('is_enabled') }} as is_enabled,
        coalesce({{ field('user_id') }}, {{ field('requester_user_id') }}, {{ field('account_id') }})
            as target_user_id,
        {{ field('workspace_id') }} as workspace_id,
        {{ num_field('target_amount') }} as target_amount,
        {{ num_field('threshold_amount') }} as threshold_amount,
        {{ field('new_collection_method') }} as new_collection_method,
        {{ field('previous_billing_type') }} as previous_billing_type,
        {{ json_text_field('item_allocations') }} as item_allocations
    from activities

)

select * from final
