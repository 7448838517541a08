"""The assistant's other doors: a voice platform's utterances (after its speech
recognition: text in, text fit to be spoken out) and an SMS or messenger gateway's
inbound messages (sender and text in, the reply to send out). Both run the same turn as
the chat; a message they cannot take is answered in words (a gateway retries an error),
and a closed conversation simply starts a new one.
"""

from __future__ import annotations

from touchpoints.assist import replies
from touchpoints.assist.queries import SmsIn, VoiceIn
from touchpoints.assist.results import SmsReply, VoiceReply
from touchpoints.assist.service import Assistant, Turn, Visitor
from touchpoints.errors import Conflict, NotFound


def _said(turn: Turn) -> list[str]:
    return [m.text for m in turn.messages if m.author == "assistant" and m.text]


def _refusal(assistant: Assistant, text: str, language: str | None) -> str | None:
    """What to say instead of a turn, for a message that cannot be read."""
    stripped = text.strip()
    if not stripped:
        return replies.say("empty", language)
    limit = assistant.settings.max_chars
    if len(stripped) > limit:
        return replies.say("too_long", language, length=len(stripped), limit=limit)
    return None


def _turn(
    assistant: Assistant,
    channel: str,
    conversation: str | None,
    visitor: Visitor,
    text: str,
    language: str | None,
) -> Turn:
    try:
        return assistant.turn(channel, conversation, visitor, text.strip(), language)
    except (Conflict, NotFound):  # closed or gone: the caller starts again
        return assistant.turn(channel, None, visitor, text.strip(), language)


def voice(assistant: Assistant, body: VoiceIn) -> VoiceReply:
    visitor = assistant.visitor(
        user_id=body.user_id, user_hash=body.user_hash, phone=body.phone, device_id=body.device_id
    )
    visitor.key()  # someone must be calling
    refusal = _refusal(assistant, body.text, body.language)
    if refusal is not None:
        return VoiceReply(
            conversation=body.conversation,
            speech=replies.speakable(refusal),
            end_session=False,
            transfer_to=None,
            verified=False,
        )
    turn = _turn(assistant, "voice", body.conversation, visitor, body.text, body.language)
    conv = turn.conversation
    handed = turn.decision.handover is not None
    return VoiceReply(
        conversation=conv.id,
        speech=replies.speakable(" ".join(_said(turn))),
        end_session=turn.decision.end,
        transfer_to=conv.team if handed else None,
        verified=conv.verified_person is not None,
    )


def sms(assistant: Assistant, body: SmsIn) -> SmsReply:
    visitor = assistant.visitor(phone=body.sender)
    refusal = _refusal(assistant, body.text, None)
    if refusal is not None:
        return SmsReply(conversation=body.conversation, reply=refusal)
    conversation = body.conversation
    if conversation is None:
        found = assistant.store.open_conversation("sms", "phone", visitor.phone or "")
        conversation = found
    turn = _turn(assistant, "sms", conversation, visitor, body.text, None)
    return SmsReply(conversation=turn.conversation.id, reply="\n".join(_said(turn)))
