"""Which routed mail goes to which delivery target (pure rules over the route and the target).

A target is named by the route's alias (`Alias.deliver_to`), else by its alias domain
(`AliasDomain.deliver_to`); "" and "eventbridge" mean the events only. `services.delivery` hands
the message over; the inbound path asks `target_of` which target, if any, to queue it for.
"""

from __future__ import annotations

from .domain import EVENTBRIDGE, DeliveryTarget

#: outcomes delivered to any target, and those an Odoo target takes when it passes automatic mail on
ROUTED = ("thread", "new-record")
AUTOMATIC = ("bounce", "auto-reply")
#: mail in a domain delivered to Odoo that the gateway has no route for (the catchall, an alias
#: only Odoo knows): Odoo routes it by its own aliases and the References of its own mail
UNROUTED = ("unknown-recipient",)


def target_for(route) -> str:
    """The target a route names: the alias's own, else its domain's ("" for events only)."""
    name = ""
    if getattr(route, "alias", None) is not None:
        name = route.alias.deliver_to
    if not name and getattr(route, "domain", None) is not None:
        name = route.domain.deliver_to
    return "" if name in ("", EVENTBRIDGE) else name


def target_of(c, route) -> str:
    """The target a routed message goes to, "" for none: routed mail to any target; automatic mail
    (bounces, auto-replies) too, the delivery keeps it from the targets that do not take it; and
    mail the gateway found no route for, when the domain's target is Odoo: a reply to Odoo's own
    notification comes to the catchall and names Odoo's Message-IDs, which only Odoo knows.
    Quarantined, looping, rejected and failed mail never goes anywhere."""
    name = target_for(route)
    if not name or not (route.kind in ROUTED or route.kind in AUTOMATIC or route.kind in UNROUTED):
        return ""
    if route.kind in UNROUTED:
        target = c.config.get_target(name)  # one read, off the common path
        return name if target is not None and target.kind == "odoo" else ""
    return name


def keeps(target: DeliveryTarget, outcome: str) -> bool:
    """Whether the target keeps a message with this outcome out (recorded "kept")."""
    if outcome in ROUTED:
        return False
    if outcome in AUTOMATIC:
        return not (target.kind == "odoo" and target.pass_automatic)
    return not (outcome in UNROUTED and target.kind == "odoo")
