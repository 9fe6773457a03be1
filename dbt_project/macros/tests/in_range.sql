{% test in_range(model, column_name, min_value=none, max_value=none) %}
{#- Fails on the rows whose value lies outside [min_value, max_value] (bounds inclusive, either
    one optional); nulls pass, not_null is its own test. -#}
{%- if min_value is none and max_value is none -%}
    {{ exceptions.raise_compiler_error("in_range on " ~ column_name ~ ": give min_value, max_value or both") }}
{%- endif %}
select {{ column_name }}
from {{ model }}
where
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% endif %}
    {%- if min_value is not none and max_value is not none %} or{% endif %}
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% endif %}
{% endtest %}
