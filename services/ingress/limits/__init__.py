"""Rate limits and budgets at admission, held exactly across ingress replicas.

`windows` (window and period math), `store` (the shared state in NATS KV, compare-and-set),
`allowance` (a replica's leased allowance of one limit), `admission` (a request against
every level of its principal, and its settlement), `headers` (OpenAI's x-ratelimit-*).
"""
