"""What partners touch over HTTP: persisted queries, caching, bundles, change feed, webhooks."""
