"""One place decides how stacks and physical resources are named.

Every name carries the product and, where a resource exists per environment, the environment,
so several products and both environments deploy side by side without collisions.
"""

from __future__ import annotations

import re

PREFIX = "mlgate"


def pascal(slug: str) -> str:
    """customer-churn -> CustomerChurn."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", slug) if part)


def stack_name(product: str, component: str, env: str | None = None) -> str:
    """mlgate-customer-churn-staging-serving; CloudFormation stack names allow 128 chars."""
    parts = [PREFIX, product, *([env] if env else []), component]
    return "-".join(parts)


def resource_name(product: str, *parts: str, max_length: int = 63) -> str:
    """mlgate-customer-churn-<parts>, lowercase, cut to the service's length limit.

    A name cut short keeps a stable suffix derived from the whole name, so two long names that
    share a prefix never collide.
    """
    name = "-".join([PREFIX, product, *parts]).lower()
    if len(name) <= max_length:
        return name
    digest = _stable_hash(name)
    return f"{name[: max_length - 9].rstrip('-')}-{digest}"


def endpoint_name(product: str, env: str) -> str:
    """SageMaker endpoint names allow 63 characters."""
    return resource_name(product, env, max_length=63)


def alarm_name(product: str, env: str, tier: str, what: str, severity: str) -> str:
    """product/env/tier/what/severity, the one scheme every alarm follows."""
    return f"{PREFIX}/{product}/{env}/{tier}/{what}/{severity}"


def _stable_hash(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()[:8]


def dashboard_name(product: str, env: str) -> str:
    return f"{PREFIX}-{product}-{env}"


def dashboard_url(product: str, env: str, region: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#dashboards:name={dashboard_name(product, env)}"
    )
