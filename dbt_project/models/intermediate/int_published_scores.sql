with ma_reasons as (
    select
        partition_date,
        siren,
        {{ pivot_reasons('ma') }}
    from {{ ref('stg_score_reasons') }}
    where score = 'ma'
    group by partition_date, siren
)

select
    s.partition_date,
    s.siren,
    s.nom_entreprise,
    s.activite_principale,
    naf.libelle_sous_classe as libelle_activite,
    s.naf_division,
    division.libelle_division,
    s.naf_section,
    section.libelle_section,
    s.departement,
    departement.libelle as libelle_departement,
    s.region,
    region.libelle as libelle_region,
    s.score_ma,
    s.score_croissance,
    s.score_stabilite,
    s.rank_ma,
    s.rank_croissance,
    s.rank_stabilite,
    s.band_ma,
    s.band_croissance,
    s.band_stabilite,
    s.unscored_croissance,
    s.confidence,
    s.scorer,
    s.model_version_ma,
    s.model_version_croissance,
    s.model_version_stabilite,
    s.calculated_at,
    {{ reason_columns('ma', 'r') }}
from {{ ref('stg_published_scores') }} as s
left join ma_reasons as r
    on r.partition_date = s.partition_date and r.siren = s.siren
left join {{ ref('naf_rev2_hierarchie') }} as naf
    on naf.code_sous_classe = s.activite_principale
left join {{ ref('stg_naf_divisions') }} as division
    on division.code_division = s.naf_division
left join {{ ref('stg_naf_sections') }} as section
    on section.code_section = s.naf_section
left join {{ ref('cog_departements_2025') }} as departement
    on departement.dep = s.departement
left join {{ ref('cog_regions_2025') }} as region
    on region.reg = s.region
