"""cfn-lint over synthesized templates, with one set of loaded rules per region.

`cfnlint.api.lint(text)` builds a new Runner for every template, and a Runner loads and
instantiates every rule (reading some 140 JSON data files): about half of the time it takes
per template here. cfn-lint's own command line lints many templates with one Runner; so does
this module, one Runner per region, for the life of the process. The findings are the same
(tests/test_compliance.py compares them with `cfnlint.api.lint`'s).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _runner(region: str) -> Any:
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    return Runner(ConfigMixIn(regions=[region]))


def lint(text: str, region: str) -> list[Any]:
    """cfn-lint's matches for one template's text (JSON or YAML), linted for `region`, as
    `cfnlint.api.lint(text, regions=[region])` returns them: decoding errors as matches."""
    from cfnlint.decode.decode import decode_str

    template, errors = decode_str(text)
    if errors:
        return list(errors)
    if template is None:
        return []
    return list(_runner(region).validate_template(template))
