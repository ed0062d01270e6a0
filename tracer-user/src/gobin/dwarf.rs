//! Runtime struct field offsets from DWARF, with a per-version table when DWARF is absent.
