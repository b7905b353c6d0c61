"""OCPP 1.6J: handlers for what a station sends, and translation of outbound commands."""
