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
    -- No age_dirigeant_max nor part_dirigeants_60_plus: a person's age is personal data,
    -- never copied into the analytics schema.
    nb_dirigeants,
    dirigeant_unique,
    procedure_collective_en_cours
from {{ source('features', 'company_features') }}
