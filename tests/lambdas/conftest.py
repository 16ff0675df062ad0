"""Hooks import as their Lambda runtime does: mlgate/lambdas is the asset root."""

from __future__ import annotations

import sys
from pathlib import Path

LAMBDAS = Path(__file__).resolve().parents[2] / "mlgate" / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))
