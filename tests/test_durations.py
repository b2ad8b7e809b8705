"""Durations are read and written by one module: the shapes people see stay the same everywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest

from concierge.durations import (
    at_a_glance,
    describe,
    describe_minutes,
    hours_and_minutes,
    looks_like_duration,
    minutes_or_hours,
    parse_duration,
)


@pytest.mark.parametrize(("text", "expected"), [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)),
                                                (" 7D ", timedelta(days=7)), ("2w", timedelta(weeks=2))])
def test_a_duration_is_read_in_minutes_hours_days_or_weeks(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7y", "²d", "99999999999d", "3651d", "0m"])
def test_anything_else_or_out_of_range_is_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_the_refusal_names_the_bounds_as_durations():
    with pytest.raises(ValueError, match="from 1m to 30d"):
        parse_duration("31d", longest=timedelta(days=30))


def test_the_shape_of_a_duration_is_told_from_a_date():
    assert looks_like_duration("7d") and looks_like_duration("99999999999h")
    assert not looks_like_duration("2026-01-01") and not looks_like_duration("7 days")


@pytest.mark.parametrize(("minutes", "text"), [(30, "30m"), (90, "90m"), (240, "4h"), (2880, "2d")])
def test_a_target_is_written_in_its_largest_whole_unit(minutes, text):
    assert describe_minutes(minutes) == text
    assert describe(timedelta(minutes=minutes)) == text


@pytest.mark.parametrize(("delta", "text"), [(timedelta(minutes=12), "12m"), (timedelta(minutes=65), "1h05m"),
                                             (timedelta(days=2, hours=3, minutes=9), "2d03h"),
                                             (timedelta(seconds=-5), "0m")])
def test_a_wait_in_the_queue_reads_at_a_glance(delta, text):
    assert at_a_glance(delta) == text


def test_an_escalation_counts_hours_past_a_day():
    assert hours_and_minutes(timedelta(hours=26, minutes=5)) == "26h05m"


@pytest.mark.parametrize(("minutes", "text"), [(45.4, "45m"), (119, "119m"), (150, "2.5h")])
def test_a_statistic_is_minutes_under_two_hours_else_hours(minutes, text):
    assert minutes_or_hours(minutes) == text
