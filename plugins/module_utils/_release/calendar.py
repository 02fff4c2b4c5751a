# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The days of the release rule: dates (``to_date``), the working-day ``Calendar`` with
holidays, ``workday_add`` and ``is_workday``; ``ReleaseError`` is the engine's one error.

Standard library only.
"""

from __future__ import annotations

import bisect
import datetime

from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import parse_date


class ReleaseError(ValueError):
    """Bad input to the release engine (not the catalog): one sentence naming the field."""


def to_date(value, field="date"):
    """A ``datetime.date`` from a date or ``'YYYY-MM-DD'``; ReleaseError naming FIELD otherwise."""
    try:
        return parse_date(value)
    except ValueError as exc:
        raise ReleaseError(f"field '{field}': {exc}") from None


# Working-day calendar

def _weekday(ordinal):
    return (ordinal - 1) % 7  # date.fromordinal(1) is a Monday


def _weekdays_before(ordinal):
    """Number of Monday-Friday days with ordinal in [1, ORDINAL)."""
    weeks, rest = divmod(ordinal - 1, 7)
    return weeks * 5 + min(rest, 5)


def _add_weekdays(ordinal, count):
    """Step COUNT Monday-Friday days forward from the weekday ORDINAL (holidays ignored)."""
    weeks, rest = divmod(count, 5)
    ordinal += weeks * 7
    if _weekday(ordinal) + rest >= 5:
        return ordinal + rest + 2
    return ordinal + rest


class Calendar:
    """Working days: Monday to Friday minus HOLIDAYS.  Works on date ordinals, cached."""

    def __init__(self, holidays=()):
        ordinals = {to_date(h, "holidays").toordinal() for h in holidays}
        self.holidays = frozenset(ordinals)
        self._weekday_holidays = sorted(o for o in ordinals if _weekday(o) < 5)
        self._add_cache = {}
        self._index_cache = {}

    def is_workday(self, ordinal):
        return _weekday(ordinal) < 5 and ordinal not in self.holidays

    def next_workday(self, ordinal):
        """ORDINAL if it is a working day, else the next working day."""
        while not self.is_workday(ordinal):
            ordinal += 1
        return ordinal

    def _holidays_between(self, low, high):
        """Weekday holidays with LOW < ordinal <= HIGH."""
        hol = self._weekday_holidays
        return bisect.bisect_right(hol, high) - bisect.bisect_right(hol, low)

    def count(self, first, last):
        """Working days with FIRST <= ordinal <= LAST."""
        if last < first:
            return 0
        weekdays = _weekdays_before(last + 1) - _weekdays_before(first)
        return weekdays - self._holidays_between(first - 1, last)

    def add(self, start, n):
        """workday_add on ordinals: the N-th working day (0-based) from START's first working day."""
        key = (start, n)
        cached = self._add_cache.get(key)
        if cached is not None:
            return cached
        current = self.next_workday(start)
        remaining = n
        while remaining > 0:
            ahead = _add_weekdays(current, remaining)
            remaining = self._holidays_between(current, ahead)  # holidays stepped over don't count
            current = ahead
        self._add_cache[key] = current
        return current

    def last_index(self, start, day):
        """Largest n with add(START, n) <= DAY, or -1 when even add(START, 0) is after DAY."""
        key = (start, day)
        cached = self._index_cache.get(key)
        if cached is None:
            cached = self.count(self.next_workday(start), day) - 1
            self._index_cache[key] = cached
        return cached


def workday_add(start, n, holidays=()):
    """The date N working days after START (a non-working START first moves to the next working day)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ReleaseError(f"field 'n': {n!r} is not an integer >= 0")
    start = to_date(start, "start")
    return datetime.date.fromordinal(Calendar(holidays).add(start.toordinal(), n))


def is_workday(day, holidays=()):
    """True when DAY is Monday to Friday and not one of HOLIDAYS."""
    return Calendar(holidays).is_workday(to_date(day, "day").toordinal())
