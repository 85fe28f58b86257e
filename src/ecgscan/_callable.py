"""Subpackages that are also functions: ``ecgscan.digitize(image)``, ``ecgscan.classify(x)``.

The stage subpackages share their names with the API functions they define. Importing a
subpackage (``import ecgscan.digitize``) rebinds the attribute ``ecgscan.digitize`` to the
module; making the module callable keeps ``ecgscan.digitize(image)`` working whichever of the
two the attribute holds.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

__all__ = ["make_module_callable"]


def make_module_callable(module_name: str, function_name: str) -> None:
    """Let calling module ``module_name`` call its function ``function_name``."""
    module = sys.modules[module_name]

    class _CallableModule(ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(self, function_name)(*args, **kwargs)

    _CallableModule.__name__ = f"CallableModule[{module_name}]"
    module.__class__ = _CallableModule
