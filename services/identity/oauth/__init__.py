"""The identity service's OAuth 2.1 / OpenID Connect provider, built on Authlib's grant logic and joserfc.

Modules: config (what the provider needs from the settings), keys (signing keys and the JWKS), store
(its tables, synchronous: Authlib runs in worker threads), models (Authlib's client/code/token mixins),
tokens (access and ID tokens), server (the Authlib AuthorizationServer for aiohttp), logins (password
checks with rate limits), pages (the login and device pages), authz (Envoy's ext_authz check) and
http (the aiohttp application the chassis serves on the replica's HTTP listener).
"""
