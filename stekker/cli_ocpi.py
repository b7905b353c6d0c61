"""`stekker ocpi ...`: roaming partners over OCPI."""

from __future__ import annotations

from typing import Annotated

import typer

from stekker.clikit import call_api, console, show_table, with_output

ocpi_app = typer.Typer(
    help="Roaming partners over OCPI 2.2.1: invite, list, grant parties, end.", no_args_is_help=True
)

PartyOption = Annotated[
    list[str],
    typer.Option(
        "--party",
        help="A party the partner acts for, e.g. NL/ABC (repeat for more); it may name no other.",
    ),
]


@ocpi_app.command("invite")
def invite(
    name: Annotated[str, typer.Argument(help="The partner, e.g. 'ABC Mobility'.")],
    party: PartyOption,
    role: Annotated[str, typer.Option(help="EMSP, HUB, NAP or OTHER.")] = "EMSP",
    raw_token: Annotated[bool, typer.Option(help="The partner sends its token unencoded.")] = False,
) -> None:
    """Issue a registration token for a new partner (shown once), granted the --party parties."""
    body = {"name": name, "parties": party, "role": role, "raw_token": raw_token}
    result = call_api("POST", "/api/ocpi/partners", json=body)
    console.print(f"partner {result['partner']['id']} invited; give its integrator:", highlight=False)
    console.print(f"  versions URL:        {result['versions_url']}", highlight=False)
    console.print(f"  registration token:  {result['registration_token']}", highlight=False)


@ocpi_app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="The partner, e.g. 'ABC Mobility'.")],
    versions_url: Annotated[str, typer.Option(help="The partner's OCPI versions URL.")],
    token: Annotated[str, typer.Option(help="The registration token the partner gave us.")],
    party: PartyOption,
    role: Annotated[str, typer.Option(help="EMSP, HUB, NAP or OTHER.")] = "EMSP",
    raw_token: Annotated[bool, typer.Option(help="The partner wants its token unencoded.")] = False,
) -> None:
    """Register with a partner from its versions URL and registration token, granted the --party parties."""
    body = {
        "name": name,
        "versions_url": versions_url,
        "token": token,
        "parties": party,
        "role": role,
        "raw_token": raw_token,
    }
    partner = call_api("POST", "/api/ocpi/partners/register", json=body)
    main = f"{partner['country_code']}-{partner['party_id']} {partner['role']}"
    console.print(f"registered with {partner['name']} ({main})", highlight=False)


@ocpi_app.command("partners")
@with_output
def partners() -> None:
    """Every partner and where its connection stands."""
    show_table(
        call_api("GET", "/api/ocpi/partners"),
        ["id", "name", "status", "role", "country_code", "party_id", "parties", "registered_at"],
        "OCPI partners",
    )


@ocpi_app.command("parties")
def parties(
    partner_id: int,
    party: Annotated[list[str], typer.Argument(help="Every party the partner acts for, e.g. NL/ABC DE/ABC.")],
) -> None:
    """Replace the parties a partner may act for (its roles for other parties stop counting)."""
    partner = call_api("PUT", f"/api/ocpi/partners/{partner_id}/parties", json={"parties": party})
    console.print(
        f"partner {partner_id} acts for {', '.join(partner['parties'])}", highlight=False, markup=False
    )


@ocpi_app.command("unregister")
def unregister(partner_id: int) -> None:
    """End a partner's connection: its token stops working at once."""
    result = call_api("DELETE", f"/api/ocpi/partners/{partner_id}")
    console.print(f"partner {partner_id} unregistered", highlight=False)
    if result.get("partner_not_told"):
        console.print(
            f"  the partner could not be told: {result['partner_not_told']}", highlight=False, markup=False
        )
