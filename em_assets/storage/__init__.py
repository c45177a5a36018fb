"""Where the project keeps what it fetches: the storage root, safe paths and the IO manager."""
