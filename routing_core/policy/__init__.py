"""The routing policy: loading, validating and compiling the YAML of policy-spec.md."""

from routing_core.policy.loader import PolicyError, canonical_digest, load_policy
from routing_core.policy.model import Policy

__all__ = ["Policy", "PolicyError", "canonical_digest", "load_policy"]
