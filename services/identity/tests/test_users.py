"""UserService over a real channel, in process: create, read, list, rename, disable, enable, passwords."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from psycopg.rows import dict_row

from chassis import Principal
from chassis.testing import TEST_PLATFORM_ADMIN, InProcess
from protomesh.identity.v1 import identity_pb2
from protomesh.identity.v1 import user_service_pb2 as pb
from protomesh.identity.v1.user_service_pb2_grpc import UserServiceStub
from services.identity.deps import IdentityDeps
from services.identity.tests.errors import named_field
from tests.support.errors import bad_fields

PASSWORD = "correct horse battery"  # pragma: allowlist secret - fake credential, test input


def _email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@Example.COM"


async def _create(identity: InProcess[IdentityDeps], tag: str = "u", **fields: Any) -> identity_pb2.User:
    request = pb.CreateUserRequest(email=f"  {_email(tag)} ", display_name="Ada Lovelace", password=PASSWORD)
    for name, value in fields.items():
        setattr(request, name, value)
    reply = await identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN).CreateUser(request)
    return reply.user


async def _row(identity: InProcess[IdentityDeps], user_id: str) -> dict[str, Any]:
    async with identity.replica.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
        row = await cur.fetchone()
    assert row is not None
    return row


async def _events(identity: InProcess[IdentityDeps], event_type: str) -> int:
    async with identity.replica.db.connection() as conn, conn.cursor() as cur:
        await cur.execute("SELECT count(*) FROM outbox WHERE event_type = %s", (event_type,))
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_create_normalises_the_email_and_keeps_only_an_argon2id_hash(identity: InProcess[IdentityDeps]) -> None:
    user = await _create(identity)
    assert user.email == user.email.strip().lower() and "@example.com" in user.email
    assert user.status == identity_pb2.USER_STATUS_ACTIVE
    row = await _row(identity, user.user_id)
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    assert PASSWORD not in str(user)
    assert await _events(identity, "protomesh.identity.v1.UserCreated") >= 1


async def test_a_duplicate_email_is_already_exists_naming_the_field(identity: InProcess[IdentityDeps]) -> None:
    user = await _create(identity)
    stub = identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateUser(pb.CreateUserRequest(email=user.email.upper(), display_name="Other", password=PASSWORD))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS and named_field(caught.value) == "email"


async def test_bad_fields_are_named(identity: InProcess[IdentityDeps]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN).CreateUser(
            # pragma: allowlist nextline secret - fake credential, test input
            pb.CreateUserRequest(email="no-at-sign", password="short"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == {"email", "display_name", "password"}


async def test_anonymous_calls_are_unauthenticated(identity: InProcess[IdentityDeps]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.stub(UserServiceStub, principal=None).ListUsers(pb.ListUsersRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_get_list_and_rename(identity: InProcess[IdentityDeps]) -> None:
    stub = identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN)
    user = await _create(identity, "listed")
    assert (await stub.GetUser(pb.GetUserRequest(user_id=user.user_id))).user == user
    found = await stub.ListUsers(pb.ListUsersRequest(email_contains=user.email.split("@")[0].upper()))
    assert [u.user_id for u in found.users] == [user.user_id] and found.page_info.total_size == 1
    renamed = await stub.UpdateUser(pb.UpdateUserRequest(user_id=user.user_id, display_name="Ada King"))
    assert renamed.user.display_name == "Ada King"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetUser(pb.GetUserRequest(user_id=str(uuid.uuid4())))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_pages_of_users_follow_each_other(identity: InProcess[IdentityDeps]) -> None:
    stub = identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN)
    tag = f"paged{uuid.uuid4().hex[:6]}"
    created = [(await _create(identity, tag)).user_id for _ in range(3)]
    first = await stub.ListUsers(pb.ListUsersRequest(email_contains=tag, page_size=2))
    second = await stub.ListUsers(pb.ListUsersRequest(email_contains=tag, page_size=2,
                                                      page_token=first.page_info.next_page_token))
    assert [u.user_id for u in [*first.users, *second.users]] == created
    assert not second.page_info.next_page_token


async def test_disable_ends_sessions_and_enable_restores_sign_in(identity: InProcess[IdentityDeps]) -> None:
    stub = identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN)
    user = await _create(identity)
    before = await _row(identity, user.user_id)
    disabled = await stub.DisableUser(pb.DisableUserRequest(user_id=user.user_id))
    assert disabled.user.status == identity_pb2.USER_STATUS_DISABLED
    after = await _row(identity, user.user_id)
    assert after["sessions_valid_after"] > before["sessions_valid_after"]
    again = await stub.DisableUser(pb.DisableUserRequest(user_id=user.user_id))  # idempotent: no second event
    assert again.user.status == identity_pb2.USER_STATUS_DISABLED
    assert (await _row(identity, user.user_id))["sessions_valid_after"] == after["sessions_valid_after"]
    enabled = await stub.EnableUser(pb.EnableUserRequest(user_id=user.user_id))
    assert enabled.user.status == identity_pb2.USER_STATUS_ACTIVE
    assert await _events(identity, "protomesh.identity.v1.UserDisabled") >= 1
    assert await _events(identity, "protomesh.identity.v1.UserEnabled") >= 1


async def test_change_password_needs_the_old_one_unless_a_platform_admin_calls(
        identity: InProcess[IdentityDeps]) -> None:
    user = await _create(identity)
    plain = Principal(subject=user.user_id, kind="user")
    stub = identity.stub(UserServiceStub, principal=plain)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ChangePassword(pb.ChangePasswordRequest(user_id=user.user_id, old_password="wrong password!",
            # pragma: allowlist nextline secret - fake credential, test input
                                                           new_password="another long password"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ChangePassword(pb.ChangePasswordRequest(user_id=user.user_id,
            # pragma: allowlist nextline secret - fake credential, test input
                                                           new_password="another long password"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    before = await _row(identity, user.user_id)
    changed = await stub.ChangePassword(pb.ChangePasswordRequest(user_id=user.user_id, old_password=PASSWORD,
            # pragma: allowlist nextline secret - fake credential, test input
                                                                 new_password="another long password"))
    after = await _row(identity, user.user_id)
    assert after["password_hash"] != before["password_hash"]
    assert after["sessions_valid_after"] > before["sessions_valid_after"]
    assert changed.user.password_change_time.ToDatetime() > before["password_changed_at"].replace(tzinfo=None)
    admin = Principal(subject=str(uuid.uuid4()), kind="user", platform_admin=True)
    await identity.stub(UserServiceStub, principal=admin).ChangePassword(
        pb.ChangePasswordRequest(user_id=user.user_id, new_password="set by the admin now"))
    assert await _events(identity, "protomesh.identity.v1.PasswordChanged") >= 2


async def test_only_a_platform_admin_creates_a_platform_admin(identity: InProcess[IdentityDeps]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # TEST_PRINCIPAL is an org admin, not a platform admin
        await identity.stub(UserServiceStub).CreateUser(pb.CreateUserRequest(
            email=_email("admin"), display_name="Grace", password=PASSWORD, platform_admin=True))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = Principal(subject=str(uuid.uuid4()), kind="user", platform_admin=True)
    reply = await identity.stub(UserServiceStub, principal=admin).CreateUser(pb.CreateUserRequest(
        email=_email("admin"), display_name="Grace", password=PASSWORD, platform_admin=True))
    assert reply.user.platform_admin and (await _row(identity, reply.user.user_id))["created_by"] == admin.subject
