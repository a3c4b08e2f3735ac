"""The gut–skin content API: vetted, versioned educational content served over GraphQL."""
