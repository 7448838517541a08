"""The simulator's files: a dirty CRM export with its import mapping, and the ground truth."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from touchpoints.demo.catalogue import STAGES
from touchpoints.demo.model import Person
from touchpoints.demo.simulator import Simulator
from touchpoints.demo.slips import _email_typo, _phone_style, _typo

CRM_COLUMNS = (
    "Kundennummer",
    "Vorname",
    "Nachname",
    "E-Mail",
    "Telefon",
    "Geburtsdatum",
    "PLZ",
    "Ort",
    "Geaendert_am",
)
CRM_MAPPING = """\
# Maps the CRM export's columns to a Segment identify call (touchpoints import --mapping).
type = "identify"
anonymous_id = "Kundennummer"  # not userId: the CRM's number is not the shop's user id
timestamp = "Geaendert_am"
message_id_prefix = "crm"

[traits]
customer_number = "Kundennummer"
first_name = "Vorname"
last_name = "Nachname"
email = "E-Mail"
phone = "Telefon"
birthday = "Geburtsdatum"
postal_code = "PLZ"
city = "Ort"

[context]
channel = "other"
source = "crm_export"
"""


@dataclass(frozen=True)
class DemoFiles:
    crm_export: Path
    crm_mapping: Path
    truth_identifiers: Path
    truth_persons: Path


def crm_rows(sim: Simulator) -> list[dict[str, str]]:
    """Purchasers and some prospects as a CRM keeps them: typos, gaps and duplicates."""
    if sim.crm is not None:  # made once: prospects' customer numbers join the truth
        return sim.crm
    rng = random.Random(f"{sim.config.seed}-crm")
    rows: list[dict[str, str]] = []
    for person in sim.people():
        prospect = person.identified and "decision" in person.stage_times
        if person.customer_number is None and not (prospect and rng.random() < 0.3):
            continue
        if person.customer_number is None:
            person.customer_number = f"K-{2_000_000 + int(person.person_id[1:])}"
            sim.truth.add("customer_number", person.customer_number, person.person_id)
        # The import sends the customer number as the anonymousId too (see CRM_MAPPING).
        sim.truth.add("anonymous_id", person.customer_number, person.person_id)
        rows.append(_crm_row(person, person.customer_number, rng))
        if rng.random() < 0.02:  # the same customer entered twice
            duplicate = f"K-{3_000_000 + int(person.person_id[1:])}"
            sim.truth.add("customer_number", duplicate, person.person_id)
            sim.truth.add("anonymous_id", duplicate, person.person_id)
            rows.append(_crm_row(person, duplicate, rng, force_typo=True))
    sim.crm = rows
    return rows


def _crm_row(p: Person, number: str, rng: random.Random, force_typo: bool = False) -> dict:
    first, last, email = p.first_name, p.last_name, p.email
    if force_typo or rng.random() < 0.05:
        if rng.random() < 0.5:
            first = _typo(first, rng)
        else:
            last = _typo(last, rng)
    if rng.random() < 0.03:
        email = _email_typo(email, rng)
        # A misspelt address is still this person's in the ground truth.
    row = {
        "Kundennummer": number,
        "Vorname": first,
        "Nachname": last,
        "E-Mail": email if rng.random() > 0.02 else "",
        "Telefon": _phone_style(p.phone, rng) if rng.random() > 0.05 else "",
        "Geburtsdatum": p.birth_date.strftime("%d.%m.%Y") if rng.random() > 0.04 else "",
        "PLZ": p.postal_code,
        "Ort": p.city,
        "Geaendert_am": (p.stage_times.get("purchase") or p.stage_times["decision"])[:19],
    }
    return row


def write_demo_files(sim: Simulator, out_dir: Path) -> DemoFiles:
    """Write the CRM export (after the events were generated) and the ground truth."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = DemoFiles(
        out_dir / "crm_export.csv",
        out_dir / "crm_mapping.toml",
        out_dir / "truth_identifiers.csv",
        out_dir / "truth_persons.csv",
    )
    rows = crm_rows(sim)
    with files.crm_export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CRM_COLUMNS, delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    files.crm_mapping.write_text(CRM_MAPPING, encoding="utf-8")
    owners = {v: pid for t, v, pid in sim.truth.identifiers if t == "customer_number"}
    for row in rows:  # a misspelt address in the CRM still belongs to its person
        if row["E-Mail"]:
            sim.truth.add("email", row["E-Mail"].lower(), owners[row["Kundennummer"]])
    with files.truth_identifiers.open("w", newline="", encoding="utf-8") as handle:
        plain = csv.writer(handle)
        plain.writerow(("id_type", "value", "person_id"))
        plain.writerows(sorted(set(sim.truth.identifiers)))
    with files.truth_persons.open("w", newline="", encoding="utf-8") as handle:
        fields = [
            "person_id",
            "age",
            "age_group",
            "birth_date",
            "city",
            "highest_stage",
            *[f"{s}_at" for s in STAGES],
            "churned",
            "identified",
            "devices",
            "pain_points",
            "preferred_channels",
            "household_id",
            "lapsed_at",
            "churn_hazards",
        ]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(sim.truth.persons)
    return files
