"""The content domain: entries, immutable revisions, review decisions and releases."""
