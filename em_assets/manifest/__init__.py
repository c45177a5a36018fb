"""The one manifest schema shared by every dataset, and its Dagster metadata form."""
