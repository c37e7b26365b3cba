"""Lambda handlers: decode the event, call one service function, return its result.

Powertools (structured logging with the Lambda context, metrics) lives here, not in the core.
functions/NAME/app.py re-exports `handler` from the module of the same name.
"""

import importlib
import importlib.util
import re
import sys

def _package_on_demand(name: str) -> None:
    """A Powertools package without the dozens of submodules nobody here reads.

    `aws_lambda_powertools.utilities.data_classes/__init__.py` imports the event class of every
    AWS service (13 ms of each cold start), `aws_lambda_powertools.event_handler/__init__.py` every
    resolver (AppSync's brings asyncio: 26 ms), and Python runs a package's __init__ before any of
    its submodules. So the package is registered here without running it, as a package whose names
    load on first use: the names its __init__ imports (`from .sqs_event import SQSEvent, ...` or
    `from <package>.api_gateway import ...`) are read from its source, and asking for one imports
    that submodule only."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.submodule_search_locations:
        return
    pattern = re.compile(rf"^from (?:\.|{re.escape(name)}\.)([\w.]+) import (\([^)]*\)|[^\n]*)", re.M)
    with open(spec.origin, encoding="utf-8") as f:
        where = {n.strip(): module for module, names in pattern.findall(f.read())
                 for n in names.strip("()").split(",") if n.strip()}
    if not where:
        return  # a layout this does not know: the normal import
    package = importlib.util.module_from_spec(spec)

    def load(attr: str):
        if attr not in where:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        value = getattr(importlib.import_module(f"{name}.{where[attr]}"), attr)
        setattr(package, attr, value)
        return value

    package.__getattr__ = load
    package.__all__ = sorted(where)
    sys.modules[name] = package


_package_on_demand("aws_lambda_powertools.utilities.data_classes")
_package_on_demand("aws_lambda_powertools.event_handler")
