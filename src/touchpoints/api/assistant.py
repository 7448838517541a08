"""The service assistant's API: the customer's doors and the agents'.

Customers' clients send with a write key (``collect``), as analytics.js does, from any
origin (CORS; the key, not the origin, authorises): the chat widget's messages and its long
poll or event stream, a voice platform's utterances, an SMS gateway's messages. Agents
(``assist``) list the queues and conversations, read one with its handover summary, reply
and close; the figures are ``analytics``; trying a question out is ``admin``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.routing import Route

from touchpoints.access.keys import ApiKey
from touchpoints.api.auth import audited, require
from touchpoints.api.state import core
from touchpoints.assist.agents import audit_target
from touchpoints.assist.evaluation import evaluate, trial
from touchpoints.assist.figures import figures
from touchpoints.assist.queries import (
    AgentReplyIn,
    ChatIn,
    CloseIn,
    EvaluateIn,
    RatingIn,
    SmsIn,
    TrialIn,
    VoiceIn,
)
from touchpoints.assist.results import (
    AgentMessage,
    ChatReply,
    Conversation,
    ConversationDetail,
    ConversationList,
    Evaluation,
    Figures,
    MessagePage,
    Queues,
    SmsReply,
    Trial,
    VoiceReply,
)
from touchpoints.assist.voice import sms, voice

router = APIRouter(prefix="/v1/assistant", tags=["assistant"])
Sender = Annotated[ApiKey, Depends(require("collect"))]
Agent = Annotated[ApiKey, Depends(require("assist"))]
Analyst = Annotated[ApiKey, Depends(require("analytics"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]
ConversationId = Annotated[str, Path(min_length=1, max_length=64)]
After = Annotated[int, Query(ge=0, le=1_000_000, description="The last message you have")]
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Max-Age": "86400",
}
# The routes a browser on another site calls (the widget): answered to CORS preflights.
BROWSER_PATHS = (
    "/v1/assistant/messages",
    "/v1/assistant/conversations/{conversation_id}/messages",
    "/v1/assistant/conversations/{conversation_id}/stream",
    "/v1/assistant/conversations/{conversation_id}/rating",
)


def _cors(response: Response) -> None:
    response.headers["Access-Control-Allow-Origin"] = "*"


async def _preflight(request: Request) -> Response:
    return Response(status_code=204, headers=_CORS)


def preflight_routes() -> list[Route]:
    """OPTIONS for the widget's routes, in front of FastAPI (which would answer 405)."""
    return [Route(path, _preflight, methods=["OPTIONS"]) for path in BROWSER_PATHS]


# -- customers ------------------------------------------------------------------------------
@router.post("/messages")
def message(request: Request, response: Response, _: Sender, body: ChatIn) -> ChatReply:
    """A customer's chat message; the answer holds the assistant's replies. Later ones (a
    person's) come by ``GET …/messages?after=`` (long polling) or ``…/stream`` (SSE)."""
    _cors(response)
    assistant = core(request).assistant
    visitor = assistant.visitor(body.anonymous_id, body.user_id, body.user_hash)
    return assistant.chat(body.conversation, visitor, body.text, body.language)


@router.get("/conversations/{conversation_id}/messages")
async def poll(
    request: Request,
    response: Response,
    _: Sender,
    conversation_id: ConversationId,
    after: After = 0,
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for one")] = 0,
) -> MessagePage:
    """The conversation's messages after number ``after``; with ``wait``, held until one
    comes, the conversation is closed, or the time is up (long polling)."""
    _cors(response)
    assistant = core(request).assistant
    version = await run_in_threadpool(assistant.version, conversation_id)
    deadline = time.monotonic() + wait
    live = assistant.live
    while version <= after and not live.closed(conversation_id) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        version = live.versions.get(conversation_id, version)
    return await run_in_threadpool(assistant.page, conversation_id, after)


@router.get(
    "/conversations/{conversation_id}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    _: Sender,
    conversation_id: ConversationId,
    after: After = 0,
    seconds: Annotated[int, Query(ge=1, le=300, description="Close the stream after")] = 300,
) -> StreamingResponse:
    """Server-sent events: each new message as ``event: message`` (its ``id`` the message's
    number: a reconnecting client sends ``Last-Event-ID``), a comment every 15 s to keep
    the connection, closed after ``seconds`` (clients reconnect)."""
    assistant = core(request).assistant
    last = request.headers.get("last-event-id", "")
    start = int(last) if last.isdigit() else after
    await run_in_threadpool(assistant.version, conversation_id)  # 404 before the stream

    async def events() -> AsyncIterator[bytes]:
        seen, ends, beat = start, time.monotonic() + seconds, time.monotonic() + 15
        while time.monotonic() < ends:
            if await request.is_disconnected():
                return
            if assistant.live.versions.get(conversation_id, seen) > seen:
                page = await run_in_threadpool(assistant.page, conversation_id, seen)
                for found in page.messages:
                    data = orjson.dumps(found.model_dump(mode="json")).decode()
                    yield f"id: {found.number}\nevent: message\ndata: {data}\n\n".encode()
                seen = page.after
            elif time.monotonic() > beat:
                beat = time.monotonic() + 15
                yield b": still here\n\n"
            await asyncio.sleep(0.2)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no", **_CORS}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.post("/conversations/{conversation_id}/rating")
def rating(
    request: Request, response: Response, _: Sender, conversation_id: ConversationId, body: RatingIn
) -> Conversation:
    """The customer's rating of the conversation, 1 to 5 (the satisfaction figure)."""
    _cors(response)
    return core(request).agents.rate(conversation_id, body.rating)


@router.post("/voice")
def voice_utterance(request: Request, _: Sender, body: VoiceIn) -> VoiceReply:
    """A voice platform's utterance (as text, after speech recognition) and the caller's
    identifier: the answer as text fit to be spoken."""
    return voice(core(request).assistant, body)


@router.post("/sms")
def sms_message(request: Request, _: Sender, body: SmsIn) -> SmsReply:
    """An inbound SMS or messenger message (sender, text): the reply to send back."""
    return sms(core(request).assistant, body)


# -- agents ---------------------------------------------------------------------------------
@router.get("/queues")
def queues(request: Request, _: Agent) -> Queues:
    """Per team: conversations waiting for a person (and the longest wait), and in progress."""
    return core(request).agents.queues()


@router.get("/conversations")
def conversations(
    request: Request,
    caller: Agent,
    state: Literal["open", "bot", "queued", "agent", "closed"] | None = None,
    team: Annotated[str | None, Query(max_length=60)] = None,
) -> ConversationList:
    """Conversations, those handed over longest ago first; ``state=open``: not closed."""
    found = core(request).agents.listing(state, team)
    audited(request, caller, "assistant.list", detail=f"{len(found.conversations)}", durable=False)
    return found


@router.get("/conversations/{conversation_id}")
def conversation(
    request: Request, caller: Agent, conversation_id: ConversationId
) -> ConversationDetail:
    """A conversation with every message and its handover summary."""
    found = core(request).agents.detail(conversation_id)
    target = audit_target(conversation_id, found.conversation.person)
    audited(request, caller, "assistant.read", target, durable=False)  # fmt: skip
    return found


@router.post("/conversations/{conversation_id}/replies", status_code=201)
def reply(
    request: Request, caller: Agent, conversation_id: ConversationId, body: AgentReplyIn
) -> AgentMessage:
    """An agent's reply: it reaches the customer's widget at its next poll."""
    tp = core(request)
    found = tp.agents.reply(conversation_id, body.text, f"key:{caller.id}")
    subject = tp.assistant.conversation(conversation_id).subject
    person = f"person:{subject}" if subject is not None else None
    audited(request, caller, "assistant.reply", audit_target(conversation_id, person))
    return found


@router.post("/conversations/{conversation_id}/close")
def close(
    request: Request, caller: Agent, conversation_id: ConversationId, body: CloseIn | None = None
) -> Conversation:
    """The conversation ended, with its outcome (resolved by default)."""
    outcome = body.outcome if body else "resolved"
    found = core(request).agents.close(conversation_id, outcome, f"key:{caller.id}")
    target = audit_target(conversation_id, found.person)
    audited(request, caller, "assistant.close", target, outcome)
    return found


@router.get("/figures")
def assistant_figures(
    request: Request, _: Analyst, days: Annotated[int, Query(ge=1, le=3650)] = 30
) -> Figures:
    """Containment, handover rate per intent, outcomes, time to the first human response
    against its target, satisfaction: over the conversations of the last ``days``."""
    tp = core(request)
    return figures(tp.assistant.store, days, tp.assistant.settings.first_response_seconds)


@router.post("/trial")
def ask(request: Request, caller: Admin, body: TrialIn) -> Trial:
    """A question answered as a test: what it was understood as, and the replies (nothing
    is kept, sent or recorded). ``key``: answer as if that person were verified."""
    assistant = core(request).assistant
    found = trial(assistant, body)
    if body.key:
        person = assistant.profiles.resolve(body.key)
        audited(request, caller, "assistant.trial", f"person:{person}", durable=False)
    return found


@router.post("/evaluate")
def evaluation(request: Request, _: Analyst, body: EvaluateIn | None = None) -> Evaluation:
    """The classifier trained without a held-out share of the intents file's phrases and
    scored on them: accuracy and out-of-scope recall per language."""
    return evaluate(core(request).assistant, body or EvaluateIn())
