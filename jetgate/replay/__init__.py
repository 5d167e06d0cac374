"""`jetgate audit …` and `jetgate usage …`: replay the event streams (or an export of them)
into a store idempotently, export a period, verify the audit log's hash chain."""
