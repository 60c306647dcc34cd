"""The identity service: users, organizations, API keys and the OAuth 2.1 / OpenID Connect provider."""
