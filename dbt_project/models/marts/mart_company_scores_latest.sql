{{ config(materialized='table') }}

select
    s.*,
    p.published_at
from {{ ref('int_published_scores') }} as s
inner join {{ ref('stg_score_publications') }} as p
    on p.partition_date = s.partition_date
where p.partition_date = (select max(partition_date) from {{ ref('stg_score_publications') }})
