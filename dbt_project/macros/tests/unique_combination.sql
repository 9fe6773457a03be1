{% test unique_combination(model, columns) %}
{#- Fails on every combination of the columns found on more than one row. -#}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
