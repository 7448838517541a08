"""Trying the assistant out: a question answered as a test (nothing kept, nothing sent, no
event), and the classifier evaluated on a held-out part of the operator's own intents file
(``touchpoints assistant ask`` and ``touchpoints assistant evaluate``)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from touchpoints.assist.classifier import fit_head, held_out, score
from touchpoints.assist.engine import Dialogue
from touchpoints.assist.live import Conversation
from touchpoints.assist.queries import EvaluateIn, TrialIn
from touchpoints.assist.results import Evaluation, LanguageScore, Trial
from touchpoints.assist.service import Assistant, _understood


def trial(assistant: Assistant, body: TrialIn) -> Trial:
    text = assistant.checked(body.text)
    now = datetime.now(UTC).replace(tzinfo=None)
    person = assistant.people.find(body.key) if body.key else None
    if body.key and person is None:
        from touchpoints.errors import NotFound

        raise NotFound(f"key: no person has {body.key!r}")
    hint = (body.language or "")[:2] or None
    conv = Conversation(
        id="trial",
        channel="chat",
        visitor_type="anonymous_id",
        visitor_value="trial",
        person=person,
        verified="signed_in" if person else None,
        verified_person=person,
        language=hint,
        started_at=now,
        updated_at=now,
    )
    reading = assistant.understanding.read(text, conv.language)
    conv.language = reading.language if reading.language in ("de", "en") else conv.language or "de"
    quiet = Dialogue(
        assistant.directory,
        assistant.customer,
        replace_codes(assistant),
        assistant.people.person,
        assistant.people.find,
        lambda conv, address, person, via: False,
        frozenset,  # no way to send a code: a trial sends nothing
        assistant.people.phone,
    )
    decision = quiet.respond(conv, text, reading)
    said = [item.text for item in decision.replies]
    if decision.handover is not None:
        context = assistant.handover.context(conv)
        feeling = (reading.sentiment.label, reading.sentiment.score)
        route, _hours = assistant.handover.route(conv, context, reading.intent, feeling)
        said.append(f"→ {route.team} ({route.priority}; {route.rule})")
    understood = _understood(reading)
    assert understood is not None
    return Trial(
        text=text,
        understood=understood,
        ranking=list(reading.guess.ranking),
        threshold=assistant.understanding.classifier.threshold,
        replies=said,
    )


def replace_codes(assistant: Assistant):  # type: ignore[no-untyped-def]
    """Codes of the trial's own (nothing the real conversations hold)."""
    from touchpoints.assist.verification import Codes

    return Codes(assistant.codes.tries, assistant.codes.minutes)


def evaluate(assistant: Assistant, body: EvaluateIn) -> Evaluation:
    """The classifier trained on the intents file without a held-out share of its phrases,
    and scored on them (as benchmarks/assistant.py does for the shipped file)."""
    understanding = assistant.understanding
    encoder = understanding.encoder
    phrases = understanding.intents.phrases()
    train, test = held_out(phrases, body.test_share, body.seed)
    head = fit_head(encoder.encode([p[0] for p in train]), [p[1] for p in train], body.seed)
    predicted = [guess.intent for guess in head.guesses(encoder.encode([p[0] for p in test]))]

    def scored(language: str | None) -> LanguageScore:
        chosen = [i for i, p in enumerate(test) if language is None or p[2] == language]
        accuracy, recall = score([test[i][1] for i in chosen], [predicted[i] for i in chosen])
        return LanguageScore(
            accuracy=round(accuracy, 4), out_of_scope_recall=round(recall, 4), phrases=len(chosen)
        )

    wrong = Counter((t[1], p) for t, p in zip(test, predicted, strict=True) if t[1] != p)
    return Evaluation(
        phrases=len(phrases),
        training=len(train),
        held_out=len(test),
        threshold=head.threshold,
        de=scored("de"),
        en=scored("en"),
        both=scored(None),
        confusions=[(t, p, n) for (t, p), n in wrong.most_common(20)],
    )
