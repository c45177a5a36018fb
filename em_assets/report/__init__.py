"""The consolidated comparison of the datasets: findings, renderings and the asset."""
