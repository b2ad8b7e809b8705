"""Relaying: a member's message to the staff thread, an expert's reply back to the member."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Row, bindparam, insert, select, update
from sqlmodel import Session

from concierge.cards import member_ref, queue_card_update, staff_card
from concierge.conversation_lookup import cards_unconfirmed, open_conversation_of
from concierge.driver_write import write
from concierge.duty import away_notice, on_duty_user_ids
from concierge.flood_limit import too_fast
from concierge.inbound import Attachment, MemberMessage, StaffReply
from concierge.metrics import count_relay, observe_first_response
from concierge.outbox.kinds import OPEN_THREAD, POST, THREAD_POST
from concierge.outbox.queue import enqueue
from concierge.people import Context, clean_name, is_admin
from concierge.platform import Address, Button, Card, FileRef, Outbound
from concierge.records import Conversation, Member, Message, Tier
from concierge.relay_files import file_line, files_to_send, for_platform, member_notice, not_passed_on, record_files, staff_notice
from concierge.relay_lookup import (
    conversation_in_thread_with_unsent,
    expert_answering,
    member_locked,
    open_conversation_with_counts,
)
from concierge.replies import Reply
from concierge.specialty_routing import route_specialty, staff_channel_for, topics_for
from concierge.states import ConversationStatus, Direction
from concierge.tables import saved_id, table_of
from concierge.tiers import entitlement_problem

NOTE_PREFIX = "note:"
LATE_AFTER = timedelta(minutes=1)  # a message handled later than this after it was written is marked late


def late_note(ctx: Context, written_at: datetime | None, *, for_member: bool = False) -> str:
    """A line saying a message arrived late (after downtime, a retry or the catch-up), or "" when it did not."""
    if written_at is None or ctx.now - written_at < LATE_AFTER:
        return ""
    written = written_at.astimezone(ctx.now.tzinfo).strftime("%Y-%m-%d %H:%M")
    if for_member:
        return f"\n(Written {written} UTC; it reached you late because of a delay on our side.)"
    return f"\n(written {written}, received {ctx.now.strftime('%Y-%m-%d %H:%M')} UTC: it arrived late)"


def _with_attachments(text: str, attachments: tuple[Attachment, ...]) -> str:
    lines = [text] if text else []
    lines += [file_line(item) for item in attachments]
    return "\n".join(lines)


# Built once (building a statement per call cost about as much as running it).
_INSERT_MESSAGE = insert(table_of(Message)).returning(table_of(Message).c.id)
_TOUCH = update(table_of(Conversation)).where(table_of(Conversation).c.id == bindparam("conversation_id"))


def record_message(session: Session, *, conversation_id: int, direction: str, author: str, text: str,
                   now: datetime, attachments: tuple[Attachment, ...] = ()) -> None:
    """Keep a message of the transcript (a plain insert: this is the hot path), and which stored files it has."""
    message_id = write(session, _INSERT_MESSAGE, {
        "conversation_id": conversation_id, "direction": direction, "author": author, "text": text,
        "attachments": [vars(item) for item in attachments], "created_at": now,
    })
    record_files(session, message_id=message_id, conversation_id=conversation_id, attachments=attachments, now=now)


def touch_conversation(session: Session, conversation_id: int, now: datetime, **changes: object) -> None:
    """Mark activity on a conversation (a plain update: this is the hot path)."""
    write(session, _TOUCH, {"conversation_id": conversation_id, "last_activity_at": now, **changes})


TOPIC_QUESTION = "Which topic is your question about? Pick one and it goes to the right experts."


def open_staff_thread(session: Session, ctx: Context, conversation: Conversation, member: Member | Row,
                      text: str, key: str, files: tuple[FileRef, ...] = ()) -> None:
    """Post the conversation's card in its specialty's staff channel; its thread carries the rest."""
    conversation.staff_channel = staff_channel_for(ctx, conversation.specialty)  # a picked topic counts
    tier = session.get(Tier, member.tier_id)
    card = staff_card(conversation, member.display_name, tier.name if tier else "?",
                      tier.response_target_minutes if tier else None, member_id=member_ref(conversation))
    # The experts on duty for the topic are paged by the card, on purpose and by id only.
    paged = on_duty_user_ids(session, conversation.specialty, conversation.staff_platform, ctx.now)
    enqueue(session, key=key, kind=OPEN_THREAD, address=Address(conversation.staff_platform,
                                                                 conversation.staff_channel),
            message=Outbound(text, card, mentions=paged, files=files), now=ctx.now, conversation_id=conversation.id)
    notice = away_notice(session, conversation.specialty, ctx.now)
    if notice is not None:
        enqueue(session, key=f"{key}:away", kind=POST,
                address=Address(conversation.member_platform, conversation.member_channel, conversation.member_user),
                message=Outbound(notice), now=ctx.now, conversation_id=conversation.id)


def refresh_name(session: Session, member: Row, shown: str, now: datetime) -> Row:
    """The member as staff should see them: a platform-given name follows the platform's changes.

    A name an admin chose is kept. Costs nothing unless the name changed.
    """
    name = clean_name(shown)
    if not name or member.name_source != "platform" or name == member.display_name:
        return member
    session.execute(update(table_of(Member)).where(table_of(Member).c.id == member.id), {"display_name": name})
    open_now = open_conversation_of(session, member.id)
    if open_now is not None:  # the card of their open question shows the new name
        queue_card_update(session, now, open_now.id)
    return session.execute(select(table_of(Member)).where(table_of(Member).c.id == member.id)).one()


def member_message(session: Session, ctx: Context, event: MemberMessage) -> Reply | None:
    """A DM to the bot: relay it into the member's conversation, or answer why not.

    Answers to the member go through the outbox (they are DMs); the returned `Reply` only tells
    the adapter what was said, it need not send it.
    """
    author = event.address
    reply_to = Address(author.platform, author.channel, author.user, workspace=author.workspace)
    member = member_locked(session, author.platform, author.user)  # one message of a member at a time
    if member is None:
        enqueue(session, key=f"join:{author.platform}:{event.event_id}", kind=POST,
                address=reply_to, message=Outbound(ctx.settings.join_message()), now=ctx.now)
        return Reply(ctx.settings.join_message(), ok=False)
    if member.blocked and (member.blocked_until is None or member.blocked_until > ctx.now):
        enqueue(session, key=f"blocked:{author.platform}:{event.event_id}", kind=POST,
                address=reply_to, message=Outbound(ctx.settings.blocked_text), now=ctx.now)
        return Reply(ctx.settings.blocked_text, ok=False)
    member = refresh_name(session, member, event.display_name, ctx.now)
    attachments = for_platform(ctx, event.attachments, ctx.staff.platform)
    text = _with_attachments(event.text.strip(), attachments)
    if not text:  # a sticker, an embed alone: say so rather than drop it silently
        notice = "We could not read that message (there was no text in it). Please write your question out."
        enqueue(session, key=f"notext:{author.platform}:{event.event_id}", kind=POST, address=reply_to,
                message=Outbound(notice), now=ctx.now)
        return Reply(notice, ok=False)
    limit = ctx.settings.max_message_chars
    if len(text) > limit:
        notice = (f"Your message is {len(text)} characters long; the limit is {limit}. "
                  "Please shorten it or split it in parts. Nothing was sent.")
        enqueue(session, key=f"toolong:{author.platform}:{event.event_id}", kind=POST,
                address=reply_to, message=Outbound(notice), now=ctx.now)
        return Reply(notice, ok=False)
    if event.edited:
        text = f"(edited) {text}"

    conversation: Row | Conversation | None  # a read-only row, or the record of a question opened here
    # One statement: the open conversation, the member's messages in it this minute, whether it has anything unsent.
    conversation = found = open_conversation_with_counts(session, member.id, ctx.now)
    if found is not None and too_fast(ctx, found.recent):
        # Kept in the transcript, not relayed; the member is told once per minute.
        recent = found.recent
        record_message(session, conversation_id=found.id, direction=Direction.DROPPED, author=member.display_name,
                       text=text, attachments=attachments, now=ctx.now)
        notice = (f"You are writing faster than our team can read ({ctx.settings.member_messages_per_minute} "
                  "messages a minute). Please wait a moment and send that again; it was not passed on.")
        if recent == ctx.settings.member_messages_per_minute:
            enqueue(session, key=f"toofast:{author.platform}:{event.event_id}", kind=POST,
                    address=reply_to, message=Outbound(notice), now=ctx.now)
        return Reply(notice, ok=False)
    if conversation is None:
        specialty, named = route_specialty(session, member, text)
        topics = [] if named else topics_for(session, member)
        problem = entitlement_problem(session, member, specialty, named, ctx.now)
        if problem is not None:
            enqueue(session, key=f"entitlement:{author.platform}:{event.event_id}", kind=POST,
                    address=reply_to, message=Outbound(problem), now=ctx.now)
            return Reply(problem, ok=False)
        conversation = Conversation(
            member_id=member.id,
            specialty=specialty,
            member_platform=author.platform,
            member_channel=author.channel,
            member_user=author.user,
            staff_platform=ctx.staff.platform,
            staff_channel=staff_channel_for(ctx, specialty),
            opened_at=ctx.now,
            last_activity_at=ctx.now,
        )
        if len(topics) > 1:  # the member picks the topic first; staff see it once picked
            conversation.status = ConversationStatus.CHOOSING
        session.add(conversation)
        session.flush()
        if conversation.status == ConversationStatus.CHOOSING:
            buttons = tuple(Button(topic.capitalize(), "topic", f"{conversation.id}:{topic}") for topic in topics)
            enqueue(session, key=f"topic:{author.platform}:{event.event_id}", kind=POST, address=reply_to,
                    message=Outbound(TOPIC_QUESTION, Card(title="Pick a topic", buttons=buttons)), now=ctx.now,
                    conversation_id=conversation.id)
        else:
            open_staff_thread(session, ctx, conversation, member, text + late_note(ctx, event.written_at),
                              key=f"in:{author.platform}:{event.event_id}", files=files_to_send(attachments))
            count_relay(session, "to_staff")
    elif conversation.status == ConversationStatus.CHOOSING:  # kept; it goes to staff with the topic
        touch_conversation(session, conversation.id, ctx.now)
    else:
        # The member may have moved to another DM channel (or platform) since.
        if (conversation.member_platform, conversation.member_channel, conversation.member_user) != (
                author.platform, author.channel, author.user):
            touch_conversation(session, conversation.id, ctx.now, member_platform=author.platform,
                               member_channel=author.channel, member_user=author.user)
        else:
            touch_conversation(session, conversation.id, ctx.now)
        enqueue(session, key=f"in:{author.platform}:{event.event_id}", kind=THREAD_POST,
                address=Address(conversation.staff_platform, conversation.staff_channel,
                                thread=conversation.staff_thread or ""),
                message=Outbound(f"{member.display_name}: {text}{late_note(ctx, event.written_at)}",
                                 files=files_to_send(attachments)), now=ctx.now,
                conversation_id=conversation.id, unsent=bool(found.unsent) if found is not None else None)
        count_relay(session, "to_staff")
    record_message(session, conversation_id=saved_id(conversation), direction=Direction.IN, author=member.display_name,
                   text=text, attachments=attachments, now=ctx.now)
    if not_passed_on(attachments):  # staff read the line in the relayed text; the member is told here
        enqueue(session, key=f"files:{author.platform}:{event.event_id}", kind=POST, address=reply_to,
                message=Outbound(member_notice(not_passed_on(attachments))), now=ctx.now,
                conversation_id=conversation.id)
    return None


class ThreadNotKnownYet(Exception):
    """A staff reply in a thread no conversation has, while some card's outcome is still unknown."""


def staff_reply(session: Session, ctx: Context, event: StaffReply) -> Reply | None:
    """A message in a staff thread: relay to the member, or keep it internal (`note:`)."""
    conversation = conversation_in_thread_with_unsent(session, event.address)
    if conversation is None:
        if cards_unconfirmed(session, event.address.platform):
            # The thread may be a card the platform took whose answer we have not had yet (a timeout,
            # a crash): the reply waits in the inbox and is tried again once the outbox knows.
            raise ThreadNotKnownYet(f"no conversation has thread {event.address.thread} yet")
        return None  # chatter outside conversation threads is not ours
    platform, user = event.address.platform, event.address.user
    expert = expert_answering(session, platform, user)
    if expert is None and not is_admin(ctx.settings, platform, user):
        return Reply("Only experts can answer members; your message was not relayed.", ok=False)
    author = expert.display_name if expert else f"admin {user}"
    attachments = for_platform(ctx, event.attachments, conversation.member_platform)
    refused = not_passed_on(attachments)
    text = _with_attachments(event.text.strip(), tuple(item for item in attachments if not item.problem))
    if not text and refused:
        return Reply(staff_notice(refused), ok=False)
    if not text:
        return Reply("That message had no text we could relay, so nothing was sent to the member.", ok=False)
    if text.lower().startswith(NOTE_PREFIX):
        record_message(session, conversation_id=conversation.id, direction=Direction.INTERNAL, author=author,
                       text=text[len(NOTE_PREFIX):].strip(), attachments=attachments, now=ctx.now)
        return Reply("(internal, not sent)")
    if conversation.status == ConversationStatus.CHOOSING:
        return Reply("The member is still picking a topic. Nothing was sent.", ok=False)
    if conversation.status != ConversationStatus.OPEN:
        return Reply(f"Conversation {conversation.id} is closed, so your reply was not sent. Reopen it to answer "
                     f"again (`/concierge reopen {conversation.id}`), then send your reply once more.", ok=False,
                     card=Card(title="", buttons=(Button("Reopen", "reopen", str(conversation.id)),)))
    limit = ctx.settings.max_message_chars
    if len(text) > limit:
        return Reply(f"Your reply is {len(text)} characters long; the limit is {limit}. Nothing was sent.", ok=False)
    answer = signed(ctx, text, expert.display_name if expert else None) + late_note(ctx, event.written_at,
                                                                                    for_member=True)
    send_to_member(session, ctx, conversation, answer,
                   author=author, expert_id=expert.id if expert else None,
                   key=f"reply:{platform}:{event.event_id}", attachments=attachments, unsent=bool(conversation.unsent))
    if refused:  # in the thread, where the expert wrote
        enqueue(session, key=f"files:{platform}:{event.event_id}", kind=THREAD_POST,
                address=Address(conversation.staff_platform, conversation.staff_channel,
                                thread=conversation.staff_thread or ""),
                message=Outbound(staff_notice(refused)), now=ctx.now, conversation_id=conversation.id)
    return None


def signed(ctx: Context, text: str, expert_name: str | None) -> str:
    """The answer as the member sees it: plain, or signed with the expert's or the program's name."""
    if ctx.settings.reply_signature == "expert" and expert_name:
        return f"{text}\n- {expert_name}"
    if ctx.settings.reply_signature == "program":
        return f"{text}\n- {ctx.settings.program_name}"
    return text


def send_to_member(session: Session, ctx: Context, conversation: Conversation | Row, text: str, *, author: str,
                   expert_id: int | None, key: str, attachments: tuple[Attachment, ...] = (),
                   unsent: bool | None = None) -> None:
    """Queue a staff answer to the member's DM and keep it in the transcript (`unsent`: see `enqueue`)."""
    member_address = Address(conversation.member_platform, conversation.member_channel, conversation.member_user)
    enqueue(session, key=key, kind=POST, address=member_address,
            message=Outbound(text, files=files_to_send(attachments)), now=ctx.now, conversation_id=conversation.id,
            unsent=unsent)
    conversation_id = saved_id(conversation)
    record_message(session, conversation_id=conversation_id, direction=Direction.OUT, author=author, text=text,
                   attachments=attachments, now=ctx.now)
    changes: dict[str, object] = {}
    count_relay(session, "to_member")
    if conversation.first_response_at is None:
        changes["first_response_at"] = ctx.now
        observe_first_response(session, conversation.specialty, conversation.opened_at, ctx.now)
    if conversation.claimed_by is None and expert_id is not None:
        changes["claimed_by"] = expert_id  # the first to answer owns it
    touch_conversation(session, conversation_id, ctx.now, **changes)
    if changes:  # answered, or claimed: the card shows it
        queue_card_update(session, ctx.now, conversation_id)
