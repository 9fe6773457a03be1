select
    partition_date,
    lag(partition_date) over (order by partition_date) as previous_partition_date,
    published_at
from {{ source('serving', 'score_publications') }}
