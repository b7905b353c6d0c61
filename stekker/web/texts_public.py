"""Texts of the public EVSE page and of the problem reports drivers send from it (the report
form, and the helpdesk's list of reports), Dutch and English: merged into `i18n.CATALOGUE`."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # the public EVSE page
    "pub_plugs": ("Aansluitingen", "Plugs"),
    "pub_plug_power": ("tot {kw} kW", "up to {kw} kW"),
    "pub_plug_number": ("Aansluiting {n}", "Plug {n}"),
    "pub_hours_unknown": (
        "De openingstijden zijn niet bekend. Bel bij twijfel de helpdesk.",
        "The opening hours are not known. If in doubt, call the helpdesk.",
    ),
    "pub_closed": ("gesloten", "closed"),
    "pub_report_link": ("Een probleem melden", "Report a problem"),
    "pub_reported": (
        "Bedankt. De helpdesk heeft uw melding ontvangen.",
        "Thank you. The helpdesk has received your report.",
    ),
    # the report form
    "rep_title": ("Probleem melden bij laadpunt {id}", "Report a problem at charge point {id}"),
    "rep_intro": (
        "Uw melding gaat naar de helpdesk van de beheerder. U hoeft geen gegevens over uzelf te "
        "geven; wilt u dat wij u terugbellen of mailen, vul dan hieronder uw nummer of adres in.",
        "Your report goes to the operator's helpdesk. You need not give anything about yourself; "
        "if you would like us to call or e-mail you back, fill in your number or address below.",
    ),
    "rep_kind": ("Wat is er aan de hand?", "What is wrong?"),
    "rep_kind_wont_start": ("Laden start niet", "Charging does not start"),
    "rep_kind_stopped": ("Laden stopte onverwacht", "Charging stopped unexpectedly"),
    "rep_kind_damaged": ("Laadpaal of kabel beschadigd", "Station or cable damaged"),
    "rep_kind_blocked": (
        "Laadplek bezet door een niet-ladende auto",
        "Spot taken by a car that is not charging",
    ),
    "rep_kind_payment": ("Betalen of laadpas werkt niet", "Payment or charging card does not work"),
    "rep_kind_other": ("Iets anders", "Something else"),
    "rep_message": ("Uw toelichting", "In your own words"),
    "rep_message_hint": (
        "Hoogstens {max} tekens. Bij \u2018Iets anders\u2019 graag een toelichting.",
        "At most {max} characters. Please explain when you choose \u2018Something else\u2019.",
    ),
    "rep_contact": ("Telefoon of e-mail (niet verplicht)", "Phone or e-mail (optional)"),
    "rep_contact_hint": (
        "Alleen als u teruggebeld of gemaild wilt worden.",
        "Only if you would like a call or an e-mail back.",
    ),
    "rep_send": ("Melding versturen", "Send report"),
    "rep_back": ("Terug naar het laadpunt", "Back to the charge point"),
    "rep_err_message_too_long": (
        "Uw toelichting is te lang: hoogstens {max} tekens.",
        "Your text is too long: at most {max} characters.",
    ),
    "rep_err_contact_too_long": (
        "Het telefoonnummer of e-mailadres is te lang: hoogstens {max} tekens.",
        "The phone number or e-mail address is too long: at most {max} characters.",
    ),
    "rep_err_message_empty": (
        "Beschrijf het probleem in een paar woorden.",
        "Describe the problem in a few words.",
    ),
    "rep_err_control_chars": (
        "De tekst bevat onzichtbare tekens die we niet kunnen aannemen.",
        "The text holds invisible characters we cannot accept.",
    ),
    "rep_err_kind_unknown_kind": ("Kies wat er aan de hand is.", "Choose what is wrong."),
    "rep_err_token": (
        "Dit formulier is verlopen of komt niet van deze pagina. Laad de pagina opnieuw en "
        "verstuur uw melding nog eens.",
        "This form has expired or did not come from this page. Reload the page and send your report again.",
    ),
    "rep_err_cross_site": (
        "Deze melding kwam van een andere website en is niet aangenomen.",
        "This report came from another website and was not accepted.",
    ),
    "rep_err_too_many": (
        "Er zijn vanaf dit adres te veel meldingen verstuurd. Probeer het over {minutes} minuten "
        "opnieuw, of bel de helpdesk.",
        "Too many reports were sent from this address. Try again in {minutes} minutes, or call the helpdesk.",
    ),
    # the helpdesk's list
    "prob_title": ("Meldingen van bestuurders", "Reports from drivers"),
    "prob_open": ("Openstaande meldingen", "Open reports"),
    "prob_all": ("Alle meldingen", "All reports"),
    "prob_none": ("Er staan geen meldingen open.", "There are no open reports."),
    "prob_none_at_all": ("Nog geen meldingen.", "No reports yet."),
    "prob_when": ("Gemeld", "Reported"),
    "prob_what": ("Probleem", "Problem"),
    "prob_words": ("Toelichting", "Words"),
    "prob_contact": ("Contact", "Contact"),
    "prob_no_contact": ("geen", "none"),
    "prob_language": ("Taal", "Language"),
    "prob_lang_nl": ("Nederlands", "Dutch"),
    "prob_lang_en": ("Engels", "English"),
    "prob_state": ("Stand", "State"),
    "prob_handled_by": ("Afgehandeld door {name} op {when}", "Handled by {name} on {when}"),
    "prob_handle": ("Afgehandeld", "Handled"),
    "prob_handled_done": ("Melding {id} is afgehandeld.", "Report {id} is handled."),
    "prob_already_handled": ("Deze melding was al afgehandeld.", "This report was already handled."),
    "prob_see_all": ("Alle meldingen bekijken", "See all reports"),
    "prob_count": ("{count} openstaand", "{count} open"),
}
