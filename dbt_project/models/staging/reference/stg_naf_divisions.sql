select distinct
    code_division,
    libelle_division,
    code_section
from {{ ref('naf_rev2_hierarchie') }}
