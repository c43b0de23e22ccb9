file(REMOVE_RECURSE
  "libalign.a"
)
