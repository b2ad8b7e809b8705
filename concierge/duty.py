"""Who is on duty, when the member can expect an answer, and escalation past the response target."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlmodel import Session, col, select

from concierge.cards import queue_card_update
from concierge.digests.cadence import WEEKDAYS, CadenceError, zone
from concierge.durations import hours_and_minutes, whole_number
from concierge.errors import Refused
from concierge.outbox.kinds import THREAD_POST
from concierge.outbox.queue import enqueue
from concierge.platform import Address, Outbound
from concierge.records import Conversation, Expert, Member, Message, Tier
from concierge.states import ConversationStatus, Direction
from concierge.tables import saved_id


def parse_days(text: str) -> str:
    """`mon-fri` or `mon,wed,fri` -> "mon,tue,wed,thu,fri"."""
    text = text.lower().strip()
    if "-" in text:
        first, _, last = text.partition("-")
        if first not in WEEKDAYS or last not in WEEKDAYS:
            raise Refused("Days look like mon-fri or mon,wed,fri.")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last)
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
        return ",".join(WEEKDAYS[day] for day in span)
    days = [day.strip() for day in text.split(",")]
    if not days or any(day not in WEEKDAYS for day in days):
        raise Refused("Days look like mon-fri or mon,wed,fri.")
    return ",".join(days)


def set_hours(expert: Expert, hours: str, time_zone: str | None, days: str | None) -> None:
    start_text, sep, end_text = hours.partition("-")
    start, end = whole_number(start_text, 0, 23), whole_number(end_text, 0, 24)
    if not sep or start is None or end is None:
        raise Refused("Working hours look like 9-17 (local hours).")
    if time_zone:
        try:
            zone(time_zone)
        except CadenceError as problem:
            raise Refused(str(problem)) from None
        expert.time_zone = time_zone
    expert.work_start, expert.work_end = start, end
    if days:
        expert.work_days = parse_days(days)


def on_duty(expert: Expert, moment: datetime) -> bool:
    if expert.work_start is None or expert.work_end is None:  # set together by set_hours
        return True
    local = moment.astimezone(zone(expert.time_zone))
    if WEEKDAYS[local.weekday()] not in expert.work_days.split(","):
        return False
    start, end = expert.work_start, expert.work_end
    return start <= local.hour < end if start < end else local.hour >= start or local.hour < end


def on_duty_user_ids(session: Session, specialty: str, platform: str, now: datetime) -> tuple[str, ...]:
    """The platform user ids of the experts on duty for a specialty (to page them)."""
    from concierge.records import PlatformIdentity

    ids = [e.id for e in experts_for(session, specialty) if on_duty(e, now)]
    if not ids:
        return ()
    return tuple(session.exec(select(PlatformIdentity.user_id).where(
        col(PlatformIdentity.expert_id).in_(ids), PlatformIdentity.platform == platform)).all())


def experts_for(session: Session, specialty: str) -> list[Expert]:
    experts = session.exec(select(Expert).where(Expert.active)).all()
    covering = [e for e in experts if specialty in e.specialties.split(",")]
    return covering or list(experts)  # "general" and unknown topics: everyone


def next_on_duty(session: Session, specialty: str, now: datetime) -> datetime | None:
    """When someone who can answer is next on duty (now if already), within a week."""
    experts = experts_for(session, specialty)
    if not experts:
        return None
    if any(on_duty(expert, now) for expert in experts):
        return now
    hour = now.replace(minute=0, second=0, microsecond=0)
    for step in range(1, 24 * 8):
        moment = hour + timedelta(hours=step)
        if any(on_duty(expert, moment) for expert in experts):
            return moment
    return None


def away_notice(session: Session, specialty: str, now: datetime) -> str | None:
    """What to tell a member who writes while nobody for their topic is on duty."""
    back = next_on_duty(session, specialty, now)
    if back is None or back == now:
        return None
    return (f"Our experts are away right now. Your question is with them and you can expect an answer "
            f"from about {back.astimezone(timezone.utc):%A %H:%M} UTC.")


def escalate_overdue(session: Session, now: datetime, admins: list[str]) -> int:
    """Page once past the tier's response target (experts on duty), once past twice it (admins)."""
    rows = session.exec(
        select(Conversation, Tier).join(Member, col(Member.id) == Conversation.member_id)
        .join(Tier, col(Tier.id) == Member.tier_id)
        .where(Conversation.status == ConversationStatus.OPEN, col(Conversation.first_response_at).is_(None),
               Conversation.escalation_level < 2, col(Tier.response_target_minutes).is_not(None))
    ).all()
    paged = 0
    for conversation, tier in rows:
        if tier.response_target_minutes is None:  # the query leaves these out
            continue
        waited = now - conversation.opened_at
        target = timedelta(minutes=tier.response_target_minutes)
        level = 2 if waited > 2 * target else 1 if waited > target else 0
        if level <= conversation.escalation_level:
            continue
        waited_text = hours_and_minutes(waited)
        if level == 1:
            names = [e.display_name for e in experts_for(session, conversation.specialty) if on_duty(e, now)]
            text = (f"Waiting {waited_text}, over the {tier.name} target. On duty for {conversation.specialty}: "
                    f"{', '.join(names) or 'nobody'}.")
        else:
            text = f"Still unanswered after {waited_text}. Admins ({', '.join(admins) or 'none set'}), please step in."
        mentions = (on_duty_user_ids(session, conversation.specialty, conversation.staff_platform, now)
                    if level == 1 else tuple(entry.partition(":")[2] for entry in admins
                                             if entry.partition(":")[0] == conversation.staff_platform))
        conversation.escalation_level = level
        session.add(Message(conversation_id=saved_id(conversation), direction=Direction.EVENT, author="concierge",
                            text=text, created_at=now))
        enqueue(session, key=f"escalation:{conversation.id}:{level}", kind=THREAD_POST,
                address=Address(conversation.staff_platform, conversation.staff_channel,
                                thread=conversation.staff_thread or ""),
                message=Outbound(text, mentions=mentions), now=now, conversation_id=conversation.id)
        session.flush()
        queue_card_update(session, now, saved_id(conversation))
        paged += 1
    return paged
