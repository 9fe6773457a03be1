select
    partition_date,
    siren,
    nom_entreprise,
    activite_principale,
    naf_section,
    naf_division,
    departement,
    region,
    score_ma,
    score_croissance,
    score_stabilite,
    confidence,
    scorer,
    model_version_ma,
    model_version_croissance,
    model_version_stabilite,
    calculated_at
from {{ source('serving', 'published_scores') }}
where {{ is_published('partition_date') }}
