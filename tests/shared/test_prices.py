"""Token prices (shared/prices.py): the cost of fresh, cached and cache-written input and of
output, exact in Decimal; an unset cache price is the input price; the worst case a budget
reserves."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Pricing, load_config
from shared.prices import TokenPrices
from shared.protocol import Route, Target

# Claude Sonnet's prices: reads 0.1× the input price, 5-minute writes 1.25×
SONNET = Pricing(input_per_million=Decimal("3"), output_per_million=Decimal("15"),
                 cached_input_per_million=Decimal("0.30"), cache_write_per_million=Decimal("3.75"))


def test_each_part_of_the_prompt_costs_its_price() -> None:
    # 1,000 prompt tokens: 600 read from the cache, 300 written to it, 100 fresh; 50 out
    assert SONNET.cost(1000, 50, cached_tokens=600, cache_write_tokens=300) == (
        Decimal("100") * 3 + Decimal("600") * Decimal("0.30") + Decimal("300") * Decimal("3.75") + 50 * 15) / 10**6
    assert SONNET.cost(1000, 50, 600, 300) == Decimal("0.002355")
    assert SONNET.cost(1000, 0, 1000) == Decimal("0.0003")  # all of it a hit: a tenth of the input price
    assert SONNET.cost(0, 0, 0, 0) == 0


def test_unset_cache_prices_are_the_input_price() -> None:
    plain = Pricing(input_per_million=Decimal("0.15"), output_per_million=Decimal("0.6"))
    assert plain.cached_input_per_million is None and plain.cache_write_per_million is None
    assert plain.cost(1234, 567, cached_tokens=1000, cache_write_tokens=200) == plain.cost(1234, 567) \
        == Decimal("0.0005253")
    # OpenAI's gpt-4o-mini: a cached input price only (half the input price); no writes to price
    openai = Pricing(input_per_million=Decimal("0.15"), output_per_million=Decimal("0.6"),
                     cached_input_per_million=Decimal("0.075"))
    assert openai.cost(2048, 0, cached_tokens=1024) == Decimal("0.0002304")
    assert openai.cost(2048, 0, cached_tokens=1024, cache_write_tokens=1024) == Decimal("0.0002304")


def test_exact_over_many_calls_and_large_counts() -> None:
    total = sum((SONNET.cost(3, 1, cached_tokens=1, cache_write_tokens=1) for _ in range(10_000)), Decimal(0))
    assert total == Decimal("0.2205")  # (3 + 0.3 + 3.75 + 15) / 1e6 × 10,000, not a float's neighbour
    assert SONNET.cost(10**9, 10**9, 5 * 10**8, 10**8) == Decimal("16725")


def test_cache_counts_beyond_the_prompt_are_cut_to_it() -> None:
    assert SONNET.cost(10, 0, cached_tokens=50) == SONNET.cost(10, 0, cached_tokens=10)
    assert SONNET.cost(10, 0, cached_tokens=8, cache_write_tokens=50) == SONNET.cost(10, 0, 8, 2)
    assert SONNET.cost(10, 0, cached_tokens=-5) == SONNET.cost(10, 0)


def test_the_worst_case_prices_every_input_token_at_the_highest_input_price() -> None:
    assert SONNET.worst_cost(1000, 100) == SONNET.cost(1000, 100, cache_write_tokens=1000) == Decimal("0.00525")
    plain = TokenPrices(input_per_million=Decimal(2), output_per_million=Decimal(8), cached_input_per_million=Decimal(1))
    assert plain.worst_cost(1000, 100) == plain.cost(1000, 100) == Decimal("0.0028")
    assert plain.worst_cost(1000, 100) >= plain.cost(1000, 100, cached_tokens=1000)


def test_the_route_prices_as_the_config_does() -> None:
    route = Route(model="m", targets=[Target(provider="p", model="m")], **SONNET.model_dump())
    assert route.cached_input_per_million == Decimal("0.30") and route.cache_write_per_million == Decimal("3.75")
    assert route.cost(1000, 50, 600, 300) == SONNET.cost(1000, 50, 600, 300)
    assert Route.model_validate_json(route.model_dump_json()).cost(1000, 50, 600, 300) == Decimal("0.002355")


def test_cache_prices_from_yaml_and_refused_when_negative(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("providers: [{name: up, type: mock}]\n"
                    "models: [{name: m, deployments: [{provider: up, model: x}],\n"
                    "          pricing: {input_per_million: 3, output_per_million: 15,\n"
                    "                    cached_input_per_million: 0.3, cache_write_per_million: 3.75}}]\n")
    pricing = load_config(path).models[0].pricing
    assert pricing == SONNET
    with pytest.raises(ValidationError):
        Pricing(cached_input_per_million=Decimal("-0.1"))
    with pytest.raises(ValidationError):
        Pricing(cache_read_per_million=Decimal("0.1"))  # type: ignore[call-arg]  # a misspelt price is refused
