"""Does storage still hold what a manifest says? The verification behind the blocking asset
checks and the reuse path, above `manifest` (the schema), `storage` and `crops` (the readers),
so none of those needs to import it back."""
