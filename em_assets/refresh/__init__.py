"""Keeping the corpus fresh: the weekly refresh and the frequent source check."""
