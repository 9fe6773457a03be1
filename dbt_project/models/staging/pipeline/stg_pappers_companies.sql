select
    partition_date,
    siren,
    forme_juridique,
    capital,
    siege_code_postal,
    siege_ville
from {{ source('enrichment', 'pappers_companies') }}
