with sectors as (
    select
        partition_date,
        naf_division,
        count(*) as companies,
        avg(score_ma) as score_ma_mean,
        percentile_cont(0.9) within group (order by score_ma) as score_ma_p90,
        avg(case when score_ma >= 75 then 1.0 else 0.0 end) as share_score_ma_75_plus
    from {{ ref('stg_published_scores') }}
    where {{ partition_window() }}
        and naf_division is not null
    group by partition_date, naf_division
)

select
    s.partition_date,
    s.naf_division,
    division.libelle_division,
    division.code_section as naf_section,
    section.libelle_section,
    s.companies,
    s.score_ma_mean,
    s.score_ma_p90,
    cast(s.share_score_ma_75_plus as double precision) as share_score_ma_75_plus
from sectors as s
left join {{ ref('stg_naf_divisions') }} as division
    on division.code_division = s.naf_division
left join {{ ref('stg_naf_sections') }} as section
    on section.code_section = division.code_section
