"""The datasets, the only package that names them: one module per dataset (its asset, run
config, checks, documented facts and `SPEC`), the two flows their kinds share (`file_set_flow`,
`crop_flow`), and the registry (`registry.DATASETS`) everything else iterates."""
