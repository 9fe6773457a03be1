{#-
    The reasons of ml_scores: for each score, TOP_REASONS ranked reasons stored as three columns
    each, {score}_reason_{rank}_feature | _value | _contribution (ma_pipeline/contracts/scores.py).
-#}
{% macro scores() %}{{ return(['ma', 'croissance', 'stabilite']) }}{% endmacro %}
{% macro top_reasons() %}{{ return(5) }}{% endmacro %}


{% macro reason_rows(alias) -%}
    {#- One VALUES row (score, reason_rank, feature, value, contribution) per reason of a row of
        published_scores: the unpivot behind stg_score_reasons. -#}
    {%- set rows = [] -%}
    {%- for score in scores() -%}
        {%- for rank in range(1, top_reasons() + 1) -%}
            {%- set prefix = alias ~ '.' ~ score ~ '_reason_' ~ rank -%}
            {%- do rows.append(
                "('" ~ score ~ "', " ~ rank ~ ", " ~ prefix ~ "_feature, " ~ prefix ~ "_value, "
                ~ prefix ~ "_contribution)"
            ) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ rows | join(',\n        ') }}
{%- endmacro %}


{% macro pivot_reasons(score) -%}
    {#- Back to one column per reason and field, aggregating stg_score_reasons rows of one score
        grouped by partition_date and siren. -#}
    {%- for rank in range(1, top_reasons() + 1) %}
    max(case when reason_rank = {{ rank }} then feature end) as {{ score }}_reason_{{ rank }}_feature,
    max(case when reason_rank = {{ rank }} then value end) as {{ score }}_reason_{{ rank }}_value,
    max(case when reason_rank = {{ rank }} then contribution end) as {{ score }}_reason_{{ rank }}_contribution
    {{- "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{% macro reason_columns(score, alias) -%}
    {#- The reason columns of one score, as pivot_reasons names them, selected from alias. -#}
    {%- set columns = [] -%}
    {%- for rank in range(1, top_reasons() + 1) -%}
        {%- for field in ['feature', 'value', 'contribution'] -%}
            {%- do columns.append(alias ~ '.' ~ score ~ '_reason_' ~ rank ~ '_' ~ field) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ columns | join(',\n    ') }}
{%- endmacro %}
