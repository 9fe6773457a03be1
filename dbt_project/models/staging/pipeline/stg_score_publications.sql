select
    partition_date,
    lag(partition_date) over (order by partition_date) as previous_partition_date,
    published_at
from {{ source('scoring', 'score_publications') }}
