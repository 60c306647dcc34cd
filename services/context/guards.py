"""Who may use a context and which states allow which writes; checked under the context's row lock."""

from __future__ import annotations

from dataclasses import dataclass

from chassis.errors import FailedPrecondition, PermissionDenied
from services.context.rows import ContextRow


@dataclass(frozen=True)
class Access:
    """The caller of a call and what the call needs."""

    caller: str = ""
    """The calling service; empty means not given (nothing to check)."""
    owner_only: bool = False
    """Only the owner may do it (delete, change the access list)."""

    def check(self, context: ContextRow) -> None:
        """PERMISSION_DENIED unless the caller may use the context."""
        if not self.caller or self.caller == context.owner:
            return
        if self.owner_only:
            raise PermissionDenied(
                f"only the owner ({context.owner}) may do this to context {context.id}; the caller is {self.caller}",
                metadata={"caller": self.caller, "owner": context.owner},
            )
        if context.shared_with and self.caller not in context.shared_with:
            raise PermissionDenied(
                f"service {self.caller!r} is not on the access list of context {context.id}; "
                "its owner can share it (POST /v1/contexts/{context_id}/shares)",
                metadata={"caller": self.caller, "owner": context.owner},
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

