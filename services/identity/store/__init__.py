"""The identity service's PostgreSQL access: users, organizations (memberships, invitations), API keys."""

from services.identity.store.api_keys import ApiKeyStore
from services.identity.store.organizations import OrganizationStore
from services.identity.store.users import UserStore

__all__ = ["ApiKeyStore", "OrganizationStore", "UserStore"]
