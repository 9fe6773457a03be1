"""Analyst marts: the dbt project in ``dbt_project/`` as the ``analytics`` assets."""
