"""Identity resolution: identifiers, the identity graph and its merge rules."""

from touchpoints.identity.identifiers import (
    DEFAULT_TYPES,
    BlockList,
    Identifier,
    IdentifierExtractor,
    IdentifierType,
    build_extractor,
    normalise,
)

__all__ = [
    "DEFAULT_TYPES",
    "BlockList",
    "Identifier",
    "IdentifierExtractor",
    "IdentifierType",
    "build_extractor",
    "normalise",
]
