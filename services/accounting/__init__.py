"""Accounting: durable JetStream consumers that write usage to ClickHouse and the spend
ledger, audit events to the audit log, and answer usage queries over NATS."""
