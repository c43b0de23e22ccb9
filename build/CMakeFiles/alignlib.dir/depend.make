# Empty dependencies file for alignlib.
# This may be replaced when dependencies are built.
