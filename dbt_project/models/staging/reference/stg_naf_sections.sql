select distinct
    code_section,
    libelle_section
from {{ ref('naf_rev2_hierarchie') }}
