"""Staff and partner keys, roles and scopes: one mechanism for the CLI, GraphQL and the console."""
