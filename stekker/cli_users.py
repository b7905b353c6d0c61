"""`stekker` operator commands: users, roles and API tokens.

They go through the API like every operator command, authenticated by STEKKER_API_TOKEN.
On a fresh install (no users, no STEKKER_API_TOKEN) the API is open: `stekker user add NAME
--role admin` creates the first user, and the CLI then logs that user in and prints a token,
because from then on the API requires one.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from stekker.clikit import api_token, call_api, console, show_table, with_output
from stekker.db.models_users import Role

user_app = typer.Typer(help="Users, roles and API tokens.", no_args_is_help=True)

_USER_COLUMNS = ["username", "display_name", "role", "active", "last_login_at"]
_TOKEN_COLUMNS = ["id", "name", "prefix", "usable", "expires_at", "last_used_at", "revoked_at", "created_by"]

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]


def _password(from_stdin: bool, confirm: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return password


def _print_secret(created: dict[str, Any]) -> None:
    console.print(
        f"API token {created['id']} ({created['name']}) for {created['username']}, "
        f"expires {created['expires_at'] or 'never'}. Shown only now:",
        markup=False,
    )
    # plain print: the secret alone on a line, easy to copy or capture in a script
    print(created["token"])


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, operator, helpdesk, municipality or read-only.")],
    display_name: Annotated[str | None, typer.Option(help="The person's full name.")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (prompts for the password). The first user on a fresh install must be an admin."""
    password = _password(password_stdin, confirm=True)
    body = {"username": username, "password": password, "role": role.value, "display_name": display_name}
    user = call_api("POST", "/api/users", json=body)
    console.print(f"user {user['username']} created with role {user['role']}", markup=False)
    if api_token() is None:
        # The API was open (first user): from now on it needs a token, so hand one out now.
        created = call_api(
            "POST",
            "/api/auth/token",
            json={"username": username, "password": password, "token_name": "cli"},
        )
        console.print("The API now requires a token. Export it as STEKKER_API_TOKEN:", markup=False)
        _print_secret(created)


@user_app.command("login")
def user_login(username: str, password_stdin: PasswordStdin = False) -> None:
    """Log in with your password: prints a new API token to export as STEKKER_API_TOKEN."""
    password = _password(password_stdin, confirm=False)
    created = call_api(
        "POST", "/api/auth/token", json={"username": username, "password": password, "token_name": "cli"}
    )
    _print_secret(created)


@user_app.command("list")
@with_output
def user_list() -> None:
    """Every user with role and state (admin)."""
    show_table(call_api("GET", "/api/users"), _USER_COLUMNS, "Users")


@user_app.command("role")
def user_role(username: str, role: Role) -> None:
    """Give a user another role (admin)."""
    user = call_api("PUT", f"/api/users/{username}/role", json={"role": role.value})
    console.print(f"{user['username']} is now {user['role']}", markup=False)


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: their login and every token stop working (admin)."""
    call_api("POST", f"/api/users/{username}/disable")
    console.print(f"{username} disabled", markup=False)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled user again (admin)."""
    call_api("POST", f"/api/users/{username}/enable")
    console.print(f"{username} enabled", markup=False)


@user_app.command("password")
def user_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password for a user (admin)."""
    password = _password(password_stdin, confirm=True)
    call_api("POST", f"/api/users/{username}/password", json={"password": password})
    console.print(f"password of {username} changed", markup=False)


@user_app.command("token")
def user_token(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for, e.g. the script using it.")] = "api",
    expires_days: Annotated[int | None, typer.Option(min=1, max=3650, help="Unset: never expires.")] = None,
) -> None:
    """Create an API token for a user (yours, or as admin anyone's); the secret is printed once."""
    body = {"name": name, "expires_days": expires_days}
    _print_secret(call_api("POST", f"/api/users/{username}/tokens", json=body))


@user_app.command("tokens")
@with_output
def user_tokens(username: str) -> None:
    """A user's API tokens, without their secrets."""
    show_table(call_api("GET", f"/api/users/{username}/tokens"), _TOKEN_COLUMNS, f"API tokens of {username}")


@user_app.command("revoke")
def user_revoke(token_id: int) -> None:
    """Revoke an API token by its id (see `user tokens NAME`)."""
    token = call_api("POST", f"/api/auth/tokens/{token_id}/revoke")
    console.print(f"API token {token['id']} ({token['name']}) of {token['username']} revoked", markup=False)
