"""Vetting: the claims-compliance rules engine and the lint of seed files (no HTTP, no database)."""
