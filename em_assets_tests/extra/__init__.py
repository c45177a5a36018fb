"""A sixth dataset that lives outside the package, to show what adding one takes."""
