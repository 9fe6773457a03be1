{% macro partition_window(column='partition_date') -%}
    {#- The run's partitions, inclusive: the vars min_date and max_date that Dagster passes. -#}
    {{ column }} between cast('{{ var("min_date") }}' as date) and cast('{{ var("max_date") }}' as date)
{%- endmacro %}


{% macro is_published(column) -%}
    {#- The partition is published: listed in serving.score_publications. -#}
    {{ column }} in (select partition_date from {{ source('serving', 'score_publications') }})
{%- endmacro %}
