"""The one manifest schema shared by all five datasets, and its Dagster metadata form."""
