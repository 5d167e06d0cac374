"""The Anthropic Messages API at the ingress: its request models, the translation of a request
into the gateway's chat-completions body, and of the answer (whole or streamed) back."""
