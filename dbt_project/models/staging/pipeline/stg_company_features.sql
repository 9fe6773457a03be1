select
    partition_date,
    siren,
    forme_juridique_famille,
    anciennete,
    effectif,
    chiffre_affaires,
    croissance_ca_1an,
    cagr_ca_3ans,
    marge_nette,
    nb_dirigeants,
    age_dirigeant_max,
    part_dirigeants_60_plus,
    dirigeant_unique,
    procedure_collective_en_cours
from {{ source('features', 'company_features') }}
