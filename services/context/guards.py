"""Who may use a context and which states allow which writes; checked under the context's row lock.

Access is decided by the authenticated principal (chassis.identity), never by anything the request
says: a context's `owner` is the subject of the principal that created it, and its access list holds
subjects (a user id, `client:<id>`, `apikey:<id>`, `service:<name>`). A service calling on a user's
behalf forwards the user's claims, so the user is checked; a service's own background work (an agent
execution on the task queue) is `service:<name>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from chassis.errors import FailedPrecondition, PermissionDenied
from chassis.identity import Principal
from services.context.rows import ContextRow


@dataclass(frozen=True)
class Access:
    """The principal of a call and what the call needs."""

    principal: Principal
    """Who is calling (verified by the gateway, or the service's own principal for its background work)."""
    owner_only: bool = False
    """Only the owner may do it (delete, change the access list)."""

    @property
    def unrestricted(self) -> bool:
        """A platform admin may use every context (it operates the mesh; issue 12 narrows admin rights)."""
        return self.principal.platform_admin

    def may_read(self, context: ContextRow) -> bool:
        """Whether the principal may read and write the context (owner, on the list, or no list)."""
        subject = self.principal.subject
        return (self.unrestricted or subject == context.owner or not context.shared_with
                or subject in context.shared_with)

    def check(self, context: ContextRow) -> None:
        """PERMISSION_DENIED unless the principal may do the call to the context.

        The message names the caller's own subject (what to share with) but not the owner, whom a
        principal outside the access list has no business learning.
        """
        subject = self.principal.subject
        if self.unrestricted or subject == context.owner:
            return
        if self.owner_only:
            raise PermissionDenied(
                f"only the owner of context {context.id} (or a platform admin) may do this; you are {subject!r}",
                metadata={"subject": subject},
            )
        if not self.may_read(context):
            raise PermissionDenied(
                f"{subject!r} is not on the access list of context {context.id}; its owner can share it "
                f"with you (POST /v1/contexts/{context.id}/shares {{\"service\": \"{subject}\"}})",
                metadata={"subject": subject},
            )


def check_layers_writable(context: ContextRow) -> None:
    """Layers change only in ACTIVE contexts."""
    if context.status == "expired":
        raise FailedPrecondition(f"context {context.id} has expired; its layers can no longer change",
                                 metadata={"status": "expired"})
    if context.status != "active":
        raise FailedPrecondition(
            f"context {context.id} is {context.status} and read-only; set its status to ACTIVE to change layers",
            metadata={"status": context.status},
        )


def check_context_writable(context: ContextRow) -> None:
    """An expired context can only be read or deleted."""
    if context.status == "expired":
        raise FailedPrecondition(f"context {context.id} has expired; it can only be read or deleted",
                                 metadata={"status": "expired"})

