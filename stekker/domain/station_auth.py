"""How a charging station proves who it is when it connects, and which combinations are allowed.

A station authenticates with a Basic-auth password (OCPP security profiles 1 and 2) or a TLS
client certificate whose CN is its id (profile 3). A station with neither can be impersonated
by anyone who knows its id: such a one connects in its place and is taken for it. So a station
must have credentials, unless the operator registered it explicitly as "no authentication"
(security profile 0: a trial, a closed network), a choice the API and console show as a risk.
"""

from __future__ import annotations

from enum import StrEnum

#: The stored security profile that means "no authentication, on purpose".
NO_AUTHENTICATION_PROFILE = 0


class Authentication(StrEnum):
    """What a station authenticates with, as the API and the console show it."""

    PASSWORD = "password"  # Basic auth (security profile 1 or 2, or no profile and a password)
    CERTIFICATE = "certificate"  # TLS client certificate (security profile 3)
    NONE = "none"  # registered explicitly without authentication (profile 0): anyone may connect as it
    MISSING = "missing"  # no credentials and not registered as "none": refused at connect


def authentication_of(security_profile: int | None, has_password: bool) -> Authentication:
    """The authentication of a station with this stored profile and (no) password."""
    if security_profile == 3:
        return Authentication.CERTIFICATE
    if has_password:
        return Authentication.PASSWORD
    if security_profile == NO_AUTHENTICATION_PROFILE:
        return Authentication.NONE
    return Authentication.MISSING


def missing_credentials_problem(security_profile: int | None, has_password: bool) -> str | None:
    """Why a station with this profile and (no) password may not be registered, or None.

    The profile/password fit itself (a password for profile 1 and 2, none for 0) is checked
    by `security_profile_problem`; this is the rule that a station needs credentials at all."""
    if authentication_of(security_profile, has_password) is not Authentication.MISSING:
        return None
    return (
        "a station needs credentials: a password (16-40 characters), or security profile 3 "
        "(a TLS client certificate); to let it connect without any, register it explicitly with "
        'authentication "none" (anyone who knows its id can then connect as it)'
    )
