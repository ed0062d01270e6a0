//! `.gopclntab`: Go's own function table, line tables and inline trees (present in stripped
//! binaries too).
