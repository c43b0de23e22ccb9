# Empty dependencies file for align.
# This may be replaced when dependencies are built.
