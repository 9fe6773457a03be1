"""The columns of ml_scores and of the published tables the API and the marts read.

One row per company and day. Each score is on 0-100; each carries its top reasons as typed columns
(``ma_reason_1_feature``, ``ma_reason_1_value``, ``ma_reason_1_contribution`` ...), so a row holds
everything the API and the marts show about a company without a join.
"""

import polars as pl

SCORES = ("ma", "croissance", "stabilite")
TOP_REASONS = 5
# The model features without which a score would be an artefact, not a judgement: a company
# missing all of a score's key inputs gets no score on it (null, with the reason in
# ``unscored_{score}``), and the publication check fails a day whose top 1 % of a score is
# dominated by companies missing them. Growth without any revenue known is the case the review
# found (every company without accounts at 99.9: the one-year-olds' branch).
KEY_INPUTS: dict[str, tuple[str, ...]] = {
    "ma": ("age_dirigeant_max",),
    "croissance": ("log_ca",),
    "stabilite": ("log_ca",),
}
# Scores a company missing their key inputs is not given (the others are checked only).
NEEDS_KEY_INPUTS = frozenset({"croissance"})
# Below this share of the model features known, no score is given at all.
MIN_COMPLETENESS = 0.25

# Who the company is, copied from the features so that lists can be filtered without a join.
PROFILE: dict[str, pl.DataType] = {
    "nom_entreprise": pl.String(),
    "activite_principale": pl.String(),  # NAF sous-classe, NN.NNL
    "naf_section": pl.String(),
    "naf_division": pl.String(),
    "departement": pl.String(),  # COG code: 75, 2A, 974
    "region": pl.String(),  # COG code
}


def reason_columns(score: str) -> dict[str, pl.DataType]:
    """The reason columns of one score: feature name, its value as shown, signed contribution."""
    columns: dict[str, pl.DataType] = {}
    for rank in range(1, TOP_REASONS + 1):
        columns[f"{score}_reason_{rank}_feature"] = pl.String()
        columns[f"{score}_reason_{rank}_value"] = pl.String()
        columns[f"{score}_reason_{rank}_contribution"] = pl.Float64()
    return columns


ML_SCORES_SCHEMA: dict[str, pl.DataType] = {
    "partition_date": pl.Date(),
    "siren": pl.String(),
    **PROFILE,
    **{f"score_{s}": pl.Float64() for s in SCORES},  # 100 x probability; null: unscored
    **{f"rank_{s}": pl.Float64() for s in SCORES},  # 0-100 percentile (ml.scale)
    **{f"band_{s}": pl.String() for s in SCORES},  # A-E by rank (ml.scale.BANDS)
    **{f"unscored_{s}": pl.String() for s in SCORES},  # why a score is null
    "confidence": pl.Float64(),  # 0-100
    "scorer": pl.String(),  # "champion" or "rule_baseline"
    **{f"model_version_{s}": pl.String() for s in SCORES},
    "feature_hash": pl.String(),  # hash of the feature vector the scores were computed from
    "calculated_at": pl.Datetime("us", "UTC"),
    **{c: t for s in SCORES for c, t in reason_columns(s).items()},
}

_SCORE_MEANINGS = {
    "ma": "an M&A event (sale, change of control, merger) within 12 months",
    "croissance": "revenue up 10 % or more the next fiscal year",
    "stabilite": "no collective procedure within 12 months",
}


def _describe(column: str) -> str:
    """What an ml_scores column holds, as the Dagster UI shows it."""
    fixed = {
        "partition_date": "The day scored (Europe/Paris).",
        "siren": "The company's SIREN.",
        "nom_entreprise": "Company name (null for a sole trader: the name is the person's).",
        "activite_principale": "NAF sous-classe, NN.NNL.",
        "naf_section": "NAF section letter.",
        "naf_division": "NAF division, 2 digits.",
        "departement": "Head office's département (COG code).",
        "region": "Head office's région (COG code).",
        "confidence": "0-100: share of the model features known x (0.5 + 0.5 x certainty).",
        "scorer": "champion (registered models) or rule_baseline (no champion yet).",
        "feature_hash": "Hash of the feature vector as the models see it (carry-over key).",
        "calculated_at": "When the scores were computed (kept when carried over).",
    }
    if column in fixed:
        return fixed[column]
    kind, _, rest = column.partition("_")
    if kind in ("score", "rank", "band", "unscored", "model") and rest.split("_")[-1] in SCORES:
        score = rest.split("_")[-1]
        return {
            "score": f"100 x P({_SCORE_MEANINGS[score]}); null when not scored.",
            "rank": f"Percentile rank of score_{score} against the champion's reference"
            " population, 0-100 (null for the rule baseline before any training).",
            "band": f"A-E band of rank_{score}: A top 5 %, B next 15 %, C 30 %, D 30 %, E 20 %.",
            "unscored": f"Why score_{score} is null, when it is.",
            "model": f"The model version that computed score_{score}.",
        }[kind]
    score, _, reason = column.partition("_reason_")
    rank, _, part = reason.partition("_")
    return {
        "feature": f"Feature of the #{rank} reason of score_{score} (largest |contribution|).",
        "value": "Its value as shown (null for personal data: a dirigeant's age).",
        "contribution": "Its signed contribution towards the score, log-odds.",
    }[part]


COLUMN_DESCRIPTIONS = {column: _describe(column) for column in ML_SCORES_SCHEMA}

# serving.score_publications: one row per published partition.
PUBLICATIONS_SCHEMA: dict[str, pl.DataType] = {
    "partition_date": pl.Date(),
    "published_at": pl.Datetime("us", "UTC"),
    "run_id": pl.String(),
    "companies": pl.Int64(),
    "scorer": pl.String(),
    **{f"model_version_{s}": pl.String() for s in SCORES},
}

# ml.model_versions (one row per registered model version) and its published copy.
MODEL_VERSIONS_SCHEMA: dict[str, pl.DataType] = {
    "score": pl.String(),
    "model_name": pl.String(),
    "version": pl.String(),
    "alias": pl.String(),  # champion, challenger or ''
    "run_id": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "metrics_json": pl.String(),  # the version's own holdout metrics
    "decision": pl.String(),
}

# scoring.kaspr_contacts and its published copy. PERSONAL DATA.
CONTACTS_SCHEMA: dict[str, pl.DataType] = {
    "partition_date": pl.Date(),
    "siren": pl.String(),
    "nom": pl.String(),
    "prenom": pl.String(),
    "qualite": pl.String(),
    "linkedin_slug": pl.String(),
    "work_email": pl.String(),
    "phone": pl.String(),
    "status": pl.String(),
    "fetched_at": pl.Datetime("us", "UTC"),
    "personal_data": pl.Boolean(),
}

PUBLISHED_DAY = "The published day the row belongs to (Europe/Paris)."
PUBLICATIONS_DESCRIPTIONS = {
    "partition_date": PUBLISHED_DAY,
    "published_at": "When the day was published (UTC).",
    "run_id": "The Dagster run that published it.",
    "companies": "Companies in the day's published scores.",
    "scorer": "champion, or rule_baseline when no model had been promoted yet.",
    **{f"model_version_{s}": f"The model version behind score_{s} that day." for s in SCORES},
}
MODEL_VERSIONS_DESCRIPTIONS = {
    "partition_date": PUBLISHED_DAY,
    "score": "The score the model computes: ma, croissance or stabilite.",
    "model_name": "The registered model's name in MLflow.",
    "version": "The registered model version.",
    "alias": "champion, challenger, or empty.",
    "run_id": "The MLflow run that trained it.",
    "created_at": "When the version was registered (UTC).",
    "metrics_json": "Its holdout metrics (ROC-AUC, PR-AUC, precision at 1 %...), as JSON.",
    "decision": "Why it was promoted or not, against the champion and the rule baseline.",
}
CONTACTS_DESCRIPTIONS = {
    "partition_date": PUBLISHED_DAY,
    "siren": "The company's SIREN.",
    "nom": "PERSONAL DATA. The dirigeant's last name.",
    "prenom": "PERSONAL DATA. The dirigeant's first name.",
    "qualite": "The dirigeant's role (Président, Gérant...).",
    "linkedin_slug": "PERSONAL DATA. The LinkedIn profile Kaspr was asked about.",
    "work_email": "PERSONAL DATA. Work e-mail found by Kaspr.",
    "phone": "PERSONAL DATA. Phone number found by Kaspr.",
    "status": "Kaspr's answer: found, not_found or an error.",
    "fetched_at": "When Kaspr answered (UTC).",
    "personal_data": "Always true: the row is personal data (served with contacts:read only).",
}
