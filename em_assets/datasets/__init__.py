"""One module per dataset: its asset, its run config, its checks and its documented facts."""
