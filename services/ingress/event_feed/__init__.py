"""The subscribers' event streams (`GET /events/usage`, `GET /events/audit`): an ephemeral
JetStream pull consumer per subscriber, filtered on the organisation's subject, pulled only
as fast as the subscriber takes what it was sent (docs/events.md, "Subscribing")."""
