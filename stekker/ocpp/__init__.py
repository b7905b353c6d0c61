"""The OCPP gateway: WebSocket server, one connection per station, version-specific handlers."""
