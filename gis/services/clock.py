"""Times that devices send: observations, bounded in skew, never the time of an event.

A phone's ``occurred_at`` or an AVL fix's ``recorded_at`` says when the device saw something by
its own clock. It is kept as data beside the server's receipt time (``reported_at``,
``received_at``); the events of the case log are always dated by the server.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gis.errors import ValidationError


def check_device_time(name: str, value: datetime, *, now: datetime, skew_s: float) -> None:
    """Refuse a device time without a zone, or more than ``skew_s`` ahead of the server's
    ``now`` (GIS_DEVICE_CLOCK_SKEW_S): a small lead is a drifting phone clock, a large one a
    wrong clock whose times mean nothing."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} {value.isoformat()} has no time zone; add +08:00 or Z")
    if value > now + timedelta(seconds=skew_s):
        raise ValidationError(
            f"{name} {value.isoformat()} is in the future (server time "
            f"{now.isoformat(timespec='seconds')}, {skew_s:g} s of clock skew allowed); "
            "check the device clock",
            field=name,
        )
