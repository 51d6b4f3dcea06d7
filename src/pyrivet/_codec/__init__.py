"""Value encodings (L1): storage encoding of user values; wire encodings."""
