"""The GraphQL layer: thin types and resolvers over service.content.reading."""
