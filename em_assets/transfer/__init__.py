"""Moving bytes from HTTP(S) sources to storage: retries, resume, verification, progress."""
