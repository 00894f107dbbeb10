"""The seed's eight prototypes and the project's domains: the one place that maps
a finding's domain to its prototype number (the validator, the knowledge base
and the report all read it from here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prototype:
    number: int
    name: str
    question: str
    domains: tuple[str, ...]
    built: bool
    suite: str | None  # the bench suite that measures it, if any


_TABLE = (
    # number, name, built, bench suite, domains, the seed's question
    (1, "flash", True, "flash", ("flash", "hopper"), "flash forward on tensor cores: tile per D"),
    (2, "stitching", True, "stitching", ("stitching",), "monolithic vs inline vs fn table"),
    (3, "paged", True, "paged", ("paged",), "PagedAttention V2 decode: bandwidth, peers"),
    (
        4,
        "specialization",
        True,
        "specialization",
        ("specialization", "runtime"),
        "specialization constants: compile cost and the archive",
    ),
    (5, "dsl", True, "dsl", ("dsl",), "a DSL twin (Triton) of the flash kernel"),
    (6, "linear", True, "linear", ("linear",), "chunked linear attention vs softmax crossover"),
    (7, "variants", True, "variants", ("variants",), "RoPE, ALiBi and GQA variants: their cost"),
    (8, "integration", True, "callpath", ("integration",), "torch custom ops, the call path"),
)
PROTOTYPES = tuple(
    Prototype(number, name, question, domains, built, suite)
    for number, name, built, suite, domains, question in _TABLE
)

DOMAINS = tuple(d for p in PROTOTYPES for d in p.domains)
_BY_DOMAIN = {d: p for p in PROTOTYPES for d in p.domains}


def label(number: int) -> str:
    """'proto3': the spelling findings carry, so `grep proto3` counts them."""
    return f"proto{number}"


def for_domain(domain: str) -> Prototype:
    try:
        return _BY_DOMAIN[domain]
    except KeyError:
        raise ValueError(f"[findings] domain must be one of {DOMAINS}, got {domain!r}") from None
