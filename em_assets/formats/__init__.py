"""Reading just enough of each file format to describe it, without loading its pixels."""
