"""The consolidated comparison of the five datasets: findings, renderings and the asset."""
