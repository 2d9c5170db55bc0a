"""The record of who did what: AuditEvents for requests, Provenance for care-record writes."""
