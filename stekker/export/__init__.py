"""Export of all historical data (requirement 169): every record type, any period, streamed as
CSV, JSON lines or Parquet with constant memory, token uids pseudonymised for roles that may not
see them. `records` says what is exported, `stream` reads it, `formats` writes it, `service`
checks a request and audits it."""
