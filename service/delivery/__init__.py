"""What partners touch over HTTP besides GraphQL: release bundles, and their static export."""
