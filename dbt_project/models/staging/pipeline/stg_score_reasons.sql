select
    s.partition_date,
    s.siren,
    r.score,
    r.reason_rank,
    r.feature,
    r.value,
    r.contribution
from {{ source('serving', 'published_scores') }} as s
cross join lateral (
    values
        {{ reason_rows('s') }}
) as r (score, reason_rank, feature, value, contribution)
where {{ is_published('s.partition_date') }}
    and r.feature is not null
