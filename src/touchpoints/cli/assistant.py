"""assistant: try the service assistant, evaluate its classifier, see its queues, its
conversations and its figures, and answer or close a conversation (through the API, like
every command)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from touchpoints.assist.results import (
    AgentMessage,
    Conversation,
    ConversationDetail,
    ConversationList,
    Evaluation,
    Figures,
    Queues,
    Trial,
)
from touchpoints.cli.base import DataDir, app, client_for, out
from touchpoints.times import iso

assistant_app = typer.Typer(
    help="The service assistant: ask, evaluate, queues, conversations, show, reply, close, figures",
    no_args_is_help=True,
)
app.add_typer(assistant_app, name="assistant")
Json = Annotated[bool, typer.Option("--json", help="The answer as JSON")]
ConversationId = Annotated[str, typer.Argument(help="The conversation's id (conv_…)")]


@assistant_app.command()
def ask(
    text: Annotated[str, typer.Argument(help="A customer's message")],
    as_key: Annotated[
        str | None,
        typer.Option("--as", help="Answer as if this person (any identifier) were verified"),
    ] = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Ask the assistant a question as a test: what it understood and what it would answer
    (nothing is kept, sent or recorded)."""
    with client_for(data_dir) as api:
        found: Trial = api.post("/v1/assistant/trial", {"text": text, "key": as_key}, Trial)
    if as_json:
        out.print_json(found.model_dump_json())
        return
    u = found.understood
    ranking = ", ".join(f"{name} {p:.2f}" for name, p in found.ranking)
    out.print(
        f"intent: {u.intent} ({u.confidence:.2f}; threshold {found.threshold:.2f}; "
        f"best: {ranking})",
        highlight=False,
    )
    out.print(
        f"language: {u.language}; sentiment: {u.sentiment} ({u.sentiment_score:+.2f})"
        + (f"; FAQ: {u.faq}" if u.faq else ""),
        highlight=False,
    )
    for reply in found.replies:
        out.print(f"> {reply}", highlight=False)


@assistant_app.command()
def evaluate(
    seed: Annotated[int, typer.Option(help="The held-out split's seed")] = 0,
    test_share: Annotated[float, typer.Option(help="The share of phrases held out")] = 0.25,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Train the classifier without a held-out share of the intents file's phrases and
    score it on them: accuracy and out-of-scope recall per language."""
    with client_for(data_dir) as api:
        found: Evaluation = api.post(
            "/v1/assistant/evaluate", {"seed": seed, "test_share": test_share}, Evaluation
        )
    if as_json:
        out.print_json(found.model_dump_json())
        return
    table = Table("language", "held out", "accuracy", "out-of-scope recall")
    for name, score in (("de", found.de), ("en", found.en), ("both", found.both)):
        table.add_row(
            name, f"{score.phrases}", f"{score.accuracy:.1%}", f"{score.out_of_scope_recall:.1%}"
        )
    out.print(table)
    out.print(
        f"{found.phrases} phrases, {found.training} to train; threshold {found.threshold:.2f}"
    )
    for truth, predicted, count in found.confusions[:8]:
        out.print(f"  {truth} → {predicted}: {count}", highlight=False)


@assistant_app.command()
def queues(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Per team: conversations waiting for a person, the longest wait, in progress."""
    with client_for(data_dir) as api:
        found: Queues = api.get("/v1/assistant/queues", Queues)
    if as_json:
        out.print_json(found.model_dump_json())
        return
    table = Table("team", "waiting", "longest wait (s)", "in progress")
    for queue in found.queues:
        wait = f"{queue.oldest_waiting_seconds:.0f}" if queue.oldest_waiting_seconds else ""
        table.add_row(queue.team, str(queue.waiting), wait, str(queue.in_progress))
    out.print(table)
    out.print("business hours: " + ("yes" if found.business_hours else "no"))


@assistant_app.command()
def conversations(
    state: Annotated[str | None, typer.Option(help="open, bot, queued, agent or closed")] = "open",
    team: Annotated[str | None, typer.Option(help="Only this team's")] = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Conversations, those handed over longest ago first."""
    with client_for(data_dir) as api:
        found: ConversationList = api.get(
            "/v1/assistant/conversations", ConversationList, state=state, team=team
        )
    if as_json:
        out.print_json(found.model_dump_json())
        return
    table = Table(
        "id", "channel", "state", "team", "priority", "intent", "person", "messages", "started"
    )
    for c in found.conversations:
        table.add_row(
            c.id,
            c.channel,
            c.state,
            c.team or "",
            c.priority or "",
            c.intent or "",
            c.person or "",
            str(c.messages),
            iso(c.started_at),
        )
    out.print(table)


@assistant_app.command()
def show(conversation: ConversationId, data_dir: DataDir = None, as_json: Json = False) -> None:
    """A conversation: its handover summary and every message."""
    with client_for(data_dir) as api:
        found: ConversationDetail = api.get(
            f"/v1/assistant/conversations/{conversation}", ConversationDetail
        )
    if as_json:
        out.print_json(found.model_dump_json())
        return
    c = found.conversation
    out.print(
        f"{c.id}: {c.channel}, {c.state}, team {c.team or '-'}, {c.person or 'anonymous'}",
        highlight=False,
    )
    if found.summary is not None:
        s = found.summary
        out.print(
            f"summary: {s.who}; stage {s.stage or '-'}; {s.reason} → {s.team} "
            f"({s.priority}, rule: {s.rule}); understood: {', '.join(s.understood)}",
            highlight=False,
        )
    for m in found.messages:
        text = m.text if m.text is not None else "(not kept)"
        about = f" [{m.intent}]" if m.intent else ""
        out.print(f"{m.number:>3} {m.author:<9} {text}{about}", highlight=False)


@assistant_app.command()
def reply(
    conversation: ConversationId,
    text: Annotated[str, typer.Argument(help="The reply")],
    data_dir: DataDir = None,
) -> None:
    """Answer the customer as an agent: it reaches their widget at its next poll."""
    with client_for(data_dir) as api:
        found: AgentMessage = api.post(
            f"/v1/assistant/conversations/{conversation}/replies", {"text": text}, AgentMessage
        )
    out.print(f"sent as message {found.number}")


@assistant_app.command()
def close(
    conversation: ConversationId,
    outcome: Annotated[
        str, typer.Option(help="resolved, unresolved, abandoned, handed_over or spam")
    ] = "resolved",
    data_dir: DataDir = None,
) -> None:
    """Close a conversation with its outcome."""
    with client_for(data_dir) as api:
        found: Conversation = api.post(
            f"/v1/assistant/conversations/{conversation}/close", {"outcome": outcome}, Conversation
        )
    out.print(f"closed {found.id}: {found.outcome}")


@assistant_app.command()
def figures(
    days: Annotated[int, typer.Option(help="Of the conversations of the last days")] = 30,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Containment, handover rate per intent, time to the first human response."""
    with client_for(data_dir) as api:
        found: Figures = api.get("/v1/assistant/figures", Figures, days=days)
    if as_json:
        out.print_json(found.model_dump_json())
        return

    def share(value: float | None) -> str:
        return f"{value:.1%}" if value is not None else "-"

    first = found.first_response
    out.print(
        f"conversations: {found.conversations}; contained {found.contained} "
        f"({share(found.containment)}); handed over {found.handed_over} "
        f"({share(found.handover_rate)})"
    )
    out.print(
        f"first human response: median {first.median_seconds or '-'} s, p90 "
        f"{first.p90_seconds or '-'} s; within {first.target_seconds} s: "
        f"{share(first.within_target)}; still waiting {first.waiting}"
    )
    if found.satisfaction is not None:
        out.print(f"satisfaction: {found.satisfaction:.2f} of 5 ({found.ratings} ratings)")
    table = Table("intent", "conversations", "handed over", "rate")
    for row in found.by_intent:
        table.add_row(
            row.intent, str(row.conversations), str(row.handed_over), share(row.handover_rate)
        )
    out.print(table)
