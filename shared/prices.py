"""Token prices per million tokens, and what a call's tokens cost at them: exact Decimals.

A call's prompt is counted whole (`prompt_tokens`, as OpenAI counts it) and split by how it
is billed: the part read from a prompt cache (`cached_tokens`), the part written to one
(`cache_write_tokens`: Anthropic, Bedrock), and the rest, fresh input. Each part has its
price; a cache price left unset is the input price, so a model priced without them is
charged as before. Reasoning tokens are part of `completion_tokens` and cost the output
price, as every provider bills them.

    cost = fresh × input + cached × cached_input + written × cache_write + completion × output

all over a million. The config's `Pricing` (shared/config.py) and the call's `Route`
(shared/protocol.py) are both `TokenPrices`, so the ingress and the router price alike.
"""
from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

MILLION = Decimal(1_000_000)


class TokenPrices(BaseModel):
    input_per_million: Decimal = Decimal(0)
    output_per_million: Decimal = Decimal(0)
    # a prompt token read from the provider's cache, and one written to it (None: the input price)
    cached_input_per_million: Decimal | None = Field(default=None, ge=0)
    cache_write_per_million: Decimal | None = Field(default=None, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0,
             cache_write_tokens: int = 0) -> Decimal:
        """What these tokens cost; cache counts beyond the prompt are cut to it (a prompt
        is never charged less than nothing)."""
        cached = max(0, min(cached_tokens, prompt_tokens))
        written = max(0, min(cache_write_tokens, prompt_tokens - cached))
        fresh = prompt_tokens - cached - written
        cached_price = self.input_per_million if self.cached_input_per_million is None \
            else self.cached_input_per_million
        write_price = self.input_per_million if self.cache_write_per_million is None else self.cache_write_per_million
        return (self.input_per_million * fresh + cached_price * cached + write_price * written
                + self.output_per_million * completion_tokens) / MILLION

    def worst_cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """The most these tokens can cost: every prompt token at the highest of the input
        prices (a cache write costs more than fresh input at Anthropic). What a budget
        reserves before the call; the call settles at its `cost`."""
        highest = max(self.input_per_million, self.cached_input_per_million or Decimal(0),
                      self.cache_write_per_million or Decimal(0))
        return (highest * prompt_tokens + self.output_per_million * completion_tokens) / MILLION
