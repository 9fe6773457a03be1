{#-
    dbt's own get_where_subquery, plus one placeholder: a test configured with
    `where: __partition_window__` reads only the partitions of the run (vars min_date, max_date).
    The vars cannot be rendered in dbt_project.yml, which sees only --vars, hence the placeholder
    (the approach dbt documents for the `where` config).
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__partition_window__', partition_window()) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
