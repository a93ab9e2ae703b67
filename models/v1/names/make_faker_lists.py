"""Write the Faker name lists (see SOURCE.md): run with the pinned Faker importable.

    python models/v1/names/make_faker_lists.py   # from the project root
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path

import faker
import faker.providers.person as person

#: letters of the Latin alphabet (with accents), an apostrophe or hyphen inside
NAME = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ](?:[A-Za-zÀ-ÖØ-öø-ÿ'\-]*[A-Za-zÀ-ÖØ-öø-ÿ])?")


def _names(value) -> set[str]:
    if isinstance(value, dict):      # some locales weight their names
        value = value.keys()
    try:
        names = [str(v).strip() for v in value]
    except TypeError:                # a property some providers compute per instance
        return set()
    return {n.upper() for n in names if NAME.fullmatch(n) and len(n) >= 3}


def main() -> int:
    first: set[str] = set()
    last: set[str] = set()
    for mod in pkgutil.iter_modules(person.__path__):
        provider = getattr(importlib.import_module(f"{person.__name__}.{mod.name}"), "Provider", None)
        if provider is None:
            continue
        for attr in ("first_names", "first_names_male", "first_names_female"):
            first |= _names(getattr(provider, attr, None))
        last |= _names(getattr(provider, "last_names", None))
    here = Path(__file__).parent
    (here / "faker_first_names.txt").write_text("\n".join(sorted(first)) + "\n", encoding="utf-8")
    (here / "faker_surnames.txt").write_text("\n".join(sorted(last)) + "\n", encoding="utf-8")
    print(f"Faker {faker.VERSION}: {len(first)} first names, {len(last)} surnames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
