"""Words for the API's codes: model features, régions and NAF sections, as a deal team reads
them (the API serves codes; the app has no access to the pipeline's reference tables)."""

FEATURES = {
    "anciennete": "company age",
    "capital": "share capital",
    "log_ca": "revenue",
    "croissance_ca_1an": "revenue growth (1 year)",
    "cagr_ca_3ans": "revenue growth (3-year CAGR)",
    "pente_log_ca": "revenue trend",
    "residu_log_ca": "revenue against its trend",
    "volatilite_log_ca": "revenue volatility",
    "marge_nette": "net margin",
    "tresorerie_sur_ca": "cash to revenue",
    "dettes_financieres_sur_ca": "financial debt to revenue",
    "effectif": "headcount",
    "ca_par_salarie": "revenue per employee",
    "tranche_effectifs_rang": "headcount band",
    "nb_dirigeants": "number of directors",
    "age_dirigeant_max": "oldest director's age",
    "part_dirigeants_60_plus": "share of directors aged 60+",
    "dirigeant_unique": "sole director",
    "anciennete_dirigeant_max": "longest director tenure",
    "dirigeant_personne_morale": "a company as director",
    "annees_depuis_derniers_comptes": "years since last accounts",
    "comptes_confidentiels": "confidential accounts",
    "nb_procedures_collectives": "insolvency proceedings",
    "procedure_collective_en_cours": "insolvency proceeding under way",
    "naf_section": "sector",
    "naf_division": "sector (division)",
    "forme_juridique_famille": "legal form",
    "region": "région",
}

REGIONS = {
    "01": "Guadeloupe",
    "02": "Martinique",
    "03": "Guyane",
    "04": "La Réunion",
    "06": "Mayotte",
    "11": "Île-de-France",
    "24": "Centre-Val de Loire",
    "27": "Bourgogne-Franche-Comté",
    "28": "Normandie",
    "32": "Hauts-de-France",
    "44": "Grand Est",
    "52": "Pays de la Loire",
    "53": "Bretagne",
    "75": "Nouvelle-Aquitaine",
    "76": "Occitanie",
    "84": "Auvergne-Rhône-Alpes",
    "93": "Provence-Alpes-Côte d'Azur",
    "94": "Corse",
}

SCORES = {"ma": "M&A", "croissance": "Growth", "stabilite": "Stability"}


def feature(name: str) -> str:
    return FEATURES.get(name, name.replace("_", " "))


def region(code: str | None) -> str:
    return "unknown" if code is None else f"{REGIONS.get(code, code)} ({code})"
