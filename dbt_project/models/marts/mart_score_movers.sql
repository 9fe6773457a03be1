with publications as (
    select partition_date, previous_partition_date
    from {{ ref('stg_score_publications') }}
    where {{ partition_window() }}
        and previous_partition_date is not null
),

changes as (
    select
        p.partition_date,
        p.previous_partition_date,
        cur.siren,
        cur.nom_entreprise,
        cur.naf_division,
        cur.departement,
        cur.score_ma,
        prev.score_ma as score_ma_previous,
        cur.score_ma - prev.score_ma as score_ma_change
    from publications as p
    inner join {{ ref('stg_published_scores') }} as cur
        on cur.partition_date = p.partition_date
    inner join {{ ref('stg_published_scores') }} as prev
        on prev.partition_date = p.previous_partition_date and prev.siren = cur.siren
    where cur.score_ma <> prev.score_ma
),

movers as (
    select * from (
        select
            changes.*,
            row_number() over (
                partition by partition_date order by abs(score_ma_change) desc, siren
            ) as mover_rank
        from changes
    ) as ranked
    where mover_rank <= {{ var('movers_per_day') }}
),

-- The score_ma reasons of both days, side by side per feature; a feature outside a day's top
-- reasons contributes 0 that day.
reasons as (
    select
        m.partition_date,
        m.siren,
        r.feature,
        max(case when r.partition_date = m.partition_date then r.value end) as value,
        max(case when r.partition_date = m.previous_partition_date then r.value end)
            as value_previous,
        sum(case when r.partition_date = m.partition_date then r.contribution else 0 end)
            as contribution,
        sum(case when r.partition_date = m.previous_partition_date then r.contribution else 0 end)
            as contribution_previous
    from movers as m
    inner join {{ ref('stg_score_reasons') }} as r
        on r.siren = m.siren
        and r.score = 'ma'
        and r.partition_date in (m.partition_date, m.previous_partition_date)
    group by m.partition_date, m.siren, r.feature
),

moved_most as (
    select * from (
        select
            reasons.*,
            row_number() over (
                partition by partition_date, siren
                order by abs(contribution - contribution_previous) desc, feature
            ) as feature_rank
        from reasons
    ) as ranked
    where feature_rank = 1
)

select
    m.partition_date,
    m.previous_partition_date,
    m.mover_rank,
    m.siren,
    m.nom_entreprise,
    m.naf_division,
    m.departement,
    m.score_ma,
    m.score_ma_previous,
    m.score_ma_change,
    r.feature as moved_reason_feature,
    r.value as moved_reason_value,
    r.value_previous as moved_reason_value_previous,
    r.contribution as moved_reason_contribution,
    r.contribution_previous as moved_reason_contribution_previous,
    r.contribution - r.contribution_previous as moved_reason_contribution_change
from movers as m
left join moved_most as r
    on r.partition_date = m.partition_date and r.siren = m.siren
