"""The OpenAI Responses API in front of any model: request and response shapes, their
translation to and from the gateway's chat completions, the typed stream events, and the
store of responses kept for `previous_response_id` (Postgres, per org)."""
