"""The shipped price table, and the price a deployment is billed at.

`PRICES` holds the providers' published list prices, in US dollars per million tokens, as
they stood when this table was shipped: `input`, `output`, `cached` (cached input:
OpenAI's cached prompt tokens, Anthropic's cache reads) and `cache_write` (Anthropic's
cache writes, at its 5-minute rate: 1.25 times the input price). Prices change and contracts
differ, so a deployment's own ``price`` always wins over this table:

```toml
[deployments.fast.price]
input = 0.15
output = 0.60
```

A price without `cache_write` bills cache writes at the input price. A dated snapshot name
(``gpt-4o-2024-08-06``, ``claude-sonnet-4-20250514``) is priced as its alias unless the table
lists it itself.
"""

import re

from keel.errors import KeelUserError
from keel.schemas.routing import Deployment, Price

__all__ = ["PRICES", "price_for"]

PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-4o": Price(input=2.50, output=10.00, cached=1.25),
    "gpt-4o-2024-05-13": Price(input=5.00, output=15.00),
    "gpt-4o-mini": Price(input=0.15, output=0.60, cached=0.075),
    "gpt-4.1": Price(input=2.00, output=8.00, cached=0.50),
    "gpt-4.1-mini": Price(input=0.40, output=1.60, cached=0.10),
    "gpt-4.1-nano": Price(input=0.10, output=0.40, cached=0.025),
    "o3": Price(input=2.00, output=8.00, cached=0.50),
    "o4-mini": Price(input=1.10, output=4.40, cached=0.275),
    "gpt-5": Price(input=1.25, output=10.00, cached=0.125),
    "gpt-5-mini": Price(input=0.25, output=2.00, cached=0.025),
    "gpt-5-nano": Price(input=0.05, output=0.40, cached=0.005),
    # Anthropic
    "claude-3-5-haiku-latest": Price(input=0.80, output=4.00, cached=0.08, cache_write=1.00),
    "claude-3-7-sonnet-latest": Price(input=3.00, output=15.00, cached=0.30, cache_write=3.75),
    "claude-sonnet-4-0": Price(input=3.00, output=15.00, cached=0.30, cache_write=3.75),
    "claude-opus-4-0": Price(input=15.00, output=75.00, cached=1.50, cache_write=18.75),
    "claude-opus-4-1": Price(input=15.00, output=75.00, cached=1.50, cache_write=18.75),
    "claude-haiku-4-5": Price(input=1.00, output=5.00, cached=0.10, cache_write=1.25),
    "claude-sonnet-4-5": Price(input=3.00, output=15.00, cached=0.30, cache_write=3.75),
    "claude-opus-4-5": Price(input=5.00, output=25.00, cached=0.50, cache_write=6.25),
}
"""List prices as shipped, USD per million tokens, by model name."""

_FREE = Price(input=0.0, output=0.0)
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def price_for(name: str, spec: Deployment) -> Price:
    """The price deployment `name` is billed at.

    Args:
        name: The deployment's name, for the error message.
        spec: The deployment.

    Returns:
        `spec.price` if set; else the table's price for `spec.model`; else zero for the
        `local` and `openai_compatible` providers (self-hosted servers).

    Raises:
        KeelUserError: An `openai` or `anthropic` model the table does not know, with no
            price configured.

    """
    if spec.price is not None:
        return spec.price
    price = PRICES.get(spec.model) or _BY_ALIAS.get(_alias(spec.model))
    if price is not None:
        return price
    if spec.provider in ("local", "openai_compatible"):
        return _FREE
    raise KeelUserError(
        f"no price for {spec.provider} model {spec.model!r} of deployment {name!r}: set "
        f"deployments.{name}.price (input, output and optionally cached, in USD per million "
        f"tokens); the shipped table knows {', '.join(sorted(PRICES))}"
    )


def _alias(model: str) -> str:
    """`claude-sonnet-4-20250514`, `claude-sonnet-4-0` -> `claude-sonnet-4`."""
    model = _SNAPSHOT.sub("", model).removesuffix("-latest")
    return model.removesuffix("-0")


_BY_ALIAS = {_alias(model): price for model, price in reversed(PRICES.items())}
"""Table entries by alias; the first listed wins (`gpt-4o`, not its older snapshot)."""
