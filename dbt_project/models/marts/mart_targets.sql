with targets as (
    select
        s.*,
        row_number() over (
            partition by s.partition_date order by s.score_ma desc, s.siren
        ) as target_rank
    from {{ ref('int_published_scores') }} as s
    where {{ partition_window('s.partition_date') }}
        and s.rank_ma >= {{ var('targets_min_rank_ma') }}
)

select
    t.partition_date,
    t.target_rank,
    t.siren,
    t.nom_entreprise,
    t.score_ma,
    t.rank_ma,
    t.band_ma,
    t.score_croissance,
    t.score_stabilite,
    t.confidence,
    t.activite_principale,
    t.libelle_activite,
    t.naf_division,
    t.libelle_division,
    t.naf_section,
    t.libelle_section,
    t.departement,
    t.libelle_departement,
    t.region,
    t.libelle_region,
    raw.categorie_entreprise,
    raw.categorie_juridique,
    pappers.forme_juridique,
    features.forme_juridique_famille,
    raw.date_creation,
    features.anciennete,
    raw.tranche_effectifs,
    features.effectif,
    features.chiffre_affaires,
    features.croissance_ca_1an,
    features.cagr_ca_3ans,
    features.marge_nette,
    pappers.capital,
    features.nb_dirigeants,
    features.dirigeant_unique,
    features.procedure_collective_en_cours,
    pappers.siege_code_postal,
    pappers.siege_ville,
    {{ reason_columns('ma', 't') }}
from targets as t
left join {{ ref('stg_company_features') }} as features
    on features.partition_date = t.partition_date and features.siren = t.siren
left join {{ ref('stg_pappers_companies') }} as pappers
    on pappers.partition_date = t.partition_date and pappers.siren = t.siren
left join {{ ref('stg_raw_companies') }} as raw
    on raw.partition_date = t.partition_date and raw.siren = t.siren
