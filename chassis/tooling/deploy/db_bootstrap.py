"""The bootstrap step of compose and Kubernetes: every service's PostgreSQL role and schema, from the environment.

`protomesh bootstrap-db` generates the passwords and keeps them in files; in a container the passwords are
the operator's (compose's .env, Kubernetes Secrets), so this runs the same provisioning
(chassis.tooling.bootstrap.provision) with each service's password taken from <SERVICE>_DB_PASSWORD and
the admin's URL from DATABASE_ADMIN_URL. The services are named on the command line by the generated
files: the image holds no descriptor set to read the catalog from.

    python -m chassis.tooling.deploy.db_bootstrap agent context ...   # create or update the roles
    python -m chassis.tooling.deploy.db_bootstrap --wait              # until DATABASE_URL's role owns its schema

`--wait` is the Kubernetes services' init container: a pod starts once its own role can log in and owns
its schema, which is exactly what the bootstrap Job provides.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence

import psycopg

from chassis.tooling.bootstrap import provision
from chassis.tooling.deploy.access import ADMIN_URL_VAR, DB_PASSWORD_PATTERN, db_password_var

WAIT_SECONDS = 600.0


class BootstrapError(ValueError):
    """A missing or unusable setting; the message names the variable."""


def passwords_from_env(services: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """Each service's password from its variable; every problem is reported at once."""
    problems, passwords = [], {}
    for service in services:
        variable = db_password_var(service)
        value = env.get(variable, "")
        if not DB_PASSWORD_PATTERN.match(value):
            problems.append(f"{variable}: {'not set' if not value else 'not 12 or more of A-Z a-z 0-9 _ -'}")
        passwords[service] = value
    if problems:
        raise BootstrapError("; ".join(problems))
    return passwords


def own_schema_ready(url: str) -> bool:
    """Whether the URL's role logs in and owns the schema named after it (what provision makes)."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = current_user"
                               " AND nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)").fetchone()
            return bool(row and row[0])
    except psycopg.OperationalError:  # server not up yet, or the role does not exist (yet)
        return False


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(prog="python -m chassis.tooling.deploy.db_bootstrap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("services", nargs="*", help="services whose roles to create or update")
    parser.add_argument("--wait", action="store_true", help="wait until DATABASE_URL's role owns its schema")
    args = parser.parse_args(argv)
    if args.wait:
        url = env.get("DATABASE_URL", "")
        deadline = time.monotonic() + WAIT_SECONDS
        while not own_schema_ready(url):
            if time.monotonic() > deadline:
                print(f"DATABASE_URL's role owns no schema after {WAIT_SECONDS:.0f}s: has the bootstrap run?",
                      file=sys.stderr)
                return 1
            time.sleep(2)
        return 0
    admin_url = env.get(ADMIN_URL_VAR, "")
    try:
        if not args.services:
            raise BootstrapError("name the services")
        if not admin_url:
            raise BootstrapError(f"{ADMIN_URL_VAR}: not set (a role that may create roles)")
        passwords = passwords_from_env(args.services, env)
    except BootstrapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    provision(admin_url, passwords)
    print(f"roles and schemas ready: {', '.join(sorted(passwords))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
