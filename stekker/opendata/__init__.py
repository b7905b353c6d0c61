"""Open data (requirements 159, 11): every EVSE's live availability and price, for anyone.

Feeds in OCPI form, DATEX II v3 (AFIR profile, JSON and XML) and GeoJSON, plus a live change
stream; served from an in-memory cache that follows the event bus, never with personal data.
"""
