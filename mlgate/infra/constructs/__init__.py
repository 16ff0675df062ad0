"""Reusable mlgate constructs (a package inside mlgate so it never shadows `constructs`)."""
