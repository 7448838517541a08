"""The service assistant's understanding, measured on held-out data: intent accuracy and
out-of-scope recall per language, beside a TF-IDF baseline in the same run; FAQ retrieval;
language detection; sentiment.

    .venv/bin/python benchmarks/assistant.py [--seed 0] [--test-share 0.25]

1. Intents: the shipped ``intents.yaml`` split per (intent, language) into a training part
   and a held-out part (``--test-share``, stratified, seeded). Each model is trained on the
   training part only (its out-of-scope threshold tuned there by 5-fold cross-validation)
   and scored on the held-out part: in-scope accuracy (a held-out in-scope phrase must get
   its intent; called out of scope, it is wrong) and out-of-scope recall (a held-out
   out-of-scope phrase must be called out of scope), per language and together.
   - touchpoints: multilingual USE v3 embeddings + logistic regression (assist.classifier);
   - baseline: TF-IDF (words 1-2 and characters 2-5 within words) + the same head.
2. FAQ: paraphrases in ``benchmarks/assistant_data.yaml`` (worded unlike the FAQ file) must
   find their entry; the held-out out-of-scope phrases must find none.
3. Language: the shipped phrases must be detected as their language (or "too short", never
   the other one or "other"); the foreign sentences as "other".
4. Sentiment: the labelled messages, accuracy per language and the confusion.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from touchpoints.assist.classifier import fit_head, held_out, score
from touchpoints.assist.encoder import Encoder
from touchpoints.assist.faq import Faq, load_faq
from touchpoints.assist.intents import OUT_OF_SCOPE, load_intents
from touchpoints.assist.language import detect
from touchpoints.assist.sentiment import sentiment

DATA = Path(__file__).with_name("assistant_data.yaml")


def report(name: str, test: list, predicted: list[str]) -> None:
    cells = []
    for language in ("de", "en", None):
        chosen = [i for i, p in enumerate(test) if language is None or p[2] == language]
        accuracy, recall = score([test[i][1] for i in chosen], [predicted[i] for i in chosen])
        cells.append(f"{accuracy:.1%} | {recall:.1%}")
    print(f"| {name} | " + " | ".join(cells) + " |")


def intents(seed: int, share: float, encoder: Encoder) -> None:
    phrases = load_intents().phrases()
    train, test = held_out(phrases, share, seed)
    counts = Counter(label == OUT_OF_SCOPE for _, label, _ in test)
    print(f"phrases: {len(phrases)}; training {len(train)}, held out {len(test)} "
          f"({counts[False]} in scope, {counts[True]} out of scope)\n")  # fmt: skip
    train_texts, train_labels = [p[0] for p in train], [p[1] for p in train]
    test_texts = [p[0] for p in test]

    started = time.perf_counter()
    head = fit_head(encoder.encode(train_texts), train_labels, seed)
    fitted = time.perf_counter() - started
    ours = [g.intent for g in head.guesses(encoder.encode(test_texts))]

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    vectorizer = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    features = vectorizer.fit_transform(train_texts).tocsr()
    baseline_head = fit_head(features, train_labels, seed)
    baseline = [g.intent for g in baseline_head.guesses(vectorizer.transform(test_texts))]

    print("| model | de accuracy | de OOS recall | en accuracy | en OOS recall "
          "| both accuracy | both OOS recall |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    report(f"USE v3 + logistic regression (threshold {head.threshold:.2f})", test, ours)
    report(f"TF-IDF + logistic regression (threshold {baseline_head.threshold:.2f})", test,
           baseline)  # fmt: skip
    print(f"\ntraining (embedding {len(train)} phrases, 5-fold threshold tuning, fit): "
          f"{fitted:.1f} s")  # fmt: skip
    wrong = Counter((t[1], p) for t, p in zip(test, ours, strict=True) if t[1] != p)
    print("touchpoints' confusions (truth → predicted: count):",
          ", ".join(f"{t} → {p}: {n}" for (t, p), n in wrong.most_common(8)) or "none")  # fmt: skip

    # Cross-lingual: trained on German phrases only, tested on the English held-out ones.
    german = [p for p in train if p[2] == "de"]
    head_de = fit_head(encoder.encode([p[0] for p in german]), [p[1] for p in german], seed)
    english = [p for p in test if p[2] == "en"]
    crossed = [g.intent for g in head_de.guesses(encoder.encode([p[0] for p in english]))]
    accuracy, recall = score([p[1] for p in english], crossed)
    print(f"trained on German only, tested on English: accuracy {accuracy:.1%}, "
          f"OOS recall {recall:.1%}")  # fmt: skip


def faq(encoder: Encoder, seed: int, share: float) -> None:
    data = yaml.safe_load(DATA.read_text())
    found = Faq(load_faq(), encoder)
    print("\n| FAQ paraphrases | by meaning | by meaning and words | by words | right entry "
          "| none found |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for language in ("de", "en"):
        pairs = data["faq"][language]
        methods: Counter[str] = Counter()
        right = 0
        for text, wanted in pairs:
            answer = found.answer(text, encoder.one(text))
            methods[answer.method if answer else "none"] += 1
            right += bool(answer and answer.entry.id == wanted)
        print(f"| {language} ({len(pairs)}) | {methods['meaning']} | "
              f"{methods['meaning and words']} | {methods['words']} | "
              f"{right / len(pairs):.1%} | {methods['none']} |")  # fmt: skip
    _, test = held_out(load_intents().phrases(), share, seed)
    outside = [p[0] for p in test if p[1] == OUT_OF_SCOPE]
    false = sum(found.answer(text, encoder.one(text)) is not None for text in outside)
    print(f"held-out out-of-scope phrases answered from the FAQ (wrongly): {false} of "
          f"{len(outside)}")  # fmt: skip


def languages() -> None:
    phrases = load_intents().phrases()
    outcome: Counter[str] = Counter()
    for text, _, language in phrases:
        found = detect(text).language
        outcome["right" if found == language else "unsure" if found is None else "wrong"] += 1
    foreign = yaml.safe_load(DATA.read_text())["foreign"]
    other = sum(detect(text).language == "other" for text in foreign)
    print(f"\nlanguage of the {len(phrases)} shipped phrases: right {outcome['right']}, "
          f"too short to say {outcome['unsure']} (the conversation's language is kept), "
          f"wrong {outcome['wrong']}; foreign sentences called other: {other} of "
          f"{len(foreign)}")  # fmt: skip
    for text, _, language in phrases:
        found = detect(text).language
        if found not in (language, None):
            print(f"  wrong: {text!r} ({language}) → {found}")


def sentiments() -> None:
    data = yaml.safe_load(DATA.read_text())["sentiment"]
    print("\n| sentiment | messages | accuracy | negative found (recall) | negative precision |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for language in ("de", "en"):
        pairs = data[language]
        guesses = [(sentiment(text).label, label) for text, label in pairs]
        right = sum(g == t for g, t in guesses)
        negatives = [g for g, t in guesses if t == "negative"]
        called = [t for g, t in guesses if g == "negative"]
        recall = sum(g == "negative" for g in negatives) / len(negatives)
        precision = sum(t == "negative" for t in called) / len(called) if called else 0.0
        print(f"| {language} | {len(pairs)} | {right / len(pairs):.1%} | {recall:.1%} | "
              f"{precision:.1%} |")  # fmt: skip
        for (text, label), (guess, _) in zip(pairs, guesses, strict=True):
            if guess != label:
                print(f"  | | {text!r}: {label} → {guess} | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-share", type=float, default=0.25)
    args = parser.parse_args()
    np.random.seed(args.seed)
    encoder = Encoder()
    started = time.perf_counter()
    encoder.load()
    loaded = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"encoder loaded in {loaded:.2f} s; process peak memory {peak:.0f} MB\n")
    intents(args.seed, args.test_share, encoder)
    faq(encoder, args.seed, args.test_share)
    languages()
    sentiments()


if __name__ == "__main__":
    main()
