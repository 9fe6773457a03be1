select
    partition_date,
    siren,
    date_creation,
    categorie_entreprise,
    categorie_juridique,
    tranche_effectifs
from {{ source('ingestion', 'raw_companies') }}
