{% test expression_is_true(model, expression, column_name=none) %}
{#- Fails on the rows where the SQL expression is false (a null counts as false). Declared on a
    column or on the model alike; the expression names its columns itself. -#}
select *
from {{ model }}
where not coalesce({{ expression }}, false)
{% endtest %}
