"""How the CLI reaches a data directory: directly, or through the server that owns it.

A running server holds the DuckDB file exclusively and announces itself in ``server.json``
(its pid, address and an in-memory admin token). When that file names a live process the CLI
talks to the server over HTTP; otherwise it opens the file itself. Both clients offer the same
methods, so each command is written once.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from touchpoints.collect.quarantine import ReplayResult
from touchpoints.config import Settings
from touchpoints.core import Touchpoints
from touchpoints.events import stored_event_json
from touchpoints.identity.linking import MatchingError
from touchpoints.journeys.service import JourneyQueryError
from touchpoints.profiles import ProfileNotFound, parse_key
from touchpoints.warehouse import EventFilter


class ClientError(Exception):
    """A command could not be carried out; the message is fit for the user."""


def running_server(settings: Settings) -> dict[str, Any] | None:
    """The server.json of a live server on this data directory, or None."""
    path = settings.server_file
    try:
        info = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalClient:
    """Works on the DuckDB file directly (no server running)."""

    remote = False

    def __init__(self, settings: Settings) -> None:
        self.tp = Touchpoints(settings)

    def close(self) -> None:
        self.tp.close()

    def count(self, flt: EventFilter) -> int:
        return self.tp.events.count(flt)

    def list(self, flt: EventFilter, limit: int, newest_first: bool) -> list[dict[str, Any]]:
        return [stored_event_json(r) for r in self.tp.events.list(flt, limit, newest_first)]

    def stats(self) -> dict[str, Any]:
        return self.tp.events.stats()

    def create_key(self, role: str, name: str | None) -> dict[str, Any]:
        key, secret = self.tp.keys.create(role, name)
        return {**key.as_dict(), "secret": secret}

    def list_keys(self) -> list[dict[str, Any]]:
        return [key.as_dict() for key in self.tp.keys.list()]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self.tp.keys.revoke(key_id).as_dict()

    def quarantine_list(self, status: str | None, limit: int) -> tuple[int, list[dict]]:
        q = self.tp.quarantine
        return q.count(status), [item.as_dict() for item in q.list(status, limit)]

    def quarantine_get(self, item_id: int) -> dict[str, Any] | None:
        item = self.tp.quarantine.get(item_id)
        return item.as_dict() if item else None

    def quarantine_replay(self, ids: list[int] | None) -> dict[str, int]:
        result: ReplayResult = self.tp.replay_quarantine(ids)
        return asdict(result)

    def quarantine_delete(self, item_id: int) -> bool:
        return self.tp.quarantine.delete(item_id)

    def import_chunk(self, messages: list[dict[str, Any]], rows: list[tuple]) -> int | None:
        return self.tp.write_rows(rows)

    # -- profiles and identity -----------------------------------------------------------------
    def _person(self, key: str) -> int | None:
        self.tp.identity.catch_up()  # events stored before this version, or by an old process
        try:
            return self.tp.profiles.resolve(key)
        except ValueError as exc:
            raise ClientError(str(exc)) from None
        except ProfileNotFound:
            return None

    def profile(self, key: str, history: bool = False) -> dict[str, Any] | None:
        person = self._person(key)
        return None if person is None else self.tp.profiles.get(person).as_dict(history)

    def timeline(self, key: str, limit: int) -> list[dict[str, Any]] | None:
        person = self._person(key)
        if person is None:
            return None
        return [stored_event_json(row) for row in self.tp.profiles.timeline(person, limit)]

    def search(self, trait: str, value: str, limit: int) -> list[str]:
        self.tp.identity.catch_up()
        return [f"person:{p}" for p in self.tp.profiles.search(trait, value, limit)]

    def unmerge(self, identifier: str, note: str) -> dict[str, Any]:
        try:
            found = parse_key(identifier)
        except ValueError as exc:
            raise ClientError(str(exc)) from None
        sid = self.tp.identity.sid_of(found) if found.type != "person" else None
        if sid is None:
            raise ClientError(f"no identifier {found}")
        persons = self.tp.identity.detach(sid, note=note)
        return {"detached": str(found), "persons": [f"person:{p}" for p in persons]}

    def match_identities(self) -> dict[str, Any]:
        try:
            return self.tp.linker.run().as_dict()
        except MatchingError as exc:
            raise ClientError(str(exc)) from None

    def match_pairs(self, status: str, limit: int, offset: int = 0) -> tuple[int, list[dict]]:
        self.tp.identity.catch_up()
        return self.tp.linker.pairs(status, limit, offset)

    def decide_pair(self, pair_id: int, accept: bool, note: str) -> dict[str, Any]:
        try:
            return self.tp.linker.decide(pair_id, accept, note)
        except KeyError:
            raise ClientError(f"no matched pair {pair_id}") from None
        except MatchingError as exc:
            raise ClientError(str(exc)) from None

    def links(self, limit: int, offset: int, removed: bool) -> tuple[int, list[dict]]:
        self.tp.identity.catch_up()
        return self.tp.identity.links(limit, offset, removed)

    def remove_link(self, link_id: int, note: str) -> dict[str, Any]:
        try:
            persons = self.tp.identity.remove_link(link_id, note)
        except KeyError:
            raise ClientError(f"no link {link_id} in force") from None
        return {"removed": link_id, "persons": [f"person:{p}" for p in persons]}

    def journey_stages(self) -> list[dict[str, Any]]:
        self.tp.identity.catch_up()
        return self.tp.journeys.stages()

    def stage_history(self, key: str) -> dict[str, Any] | None:
        person = self._person(key)
        if person is None:
            return None
        history = self.tp.journeys.stage_history(person)
        return {
            "person": f"person:{person}",
            "current": history[-1]["stage"] if history else None,
            "stages": history,
        }

    def journey_query(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """One journey analysis (map, funnel, drop_offs, retention, paths, variants,
        channel_mix, attribution) with its parameters, as the API takes them."""
        self.tp.identity.catch_up()
        journeys = self.tp.journeys
        params = dict(params)
        calls = {
            "map": lambda: journeys.journey_map(
                params["top"],
                params["collapse"],
                params.get("since"),
                params.get("until"),
                params.get("channel"),
                params.get("age_group"),
                params.get("segment"),
            ),
            "funnel": lambda: journeys.funnel(
                params["spec"], compare_units=params.get("compare_units", False)
            ),
            "drop_offs": lambda: journeys.drop_offs(
                params["spec"], params["step"], params["limit"], params.get("offset", 0)
            ),
            "retention": lambda: journeys.retention(params["spec"]),
            "paths": lambda: journeys.paths(**params),
            "variants": lambda: journeys.variants(params["limit"]),
            "channel_mix": lambda: journeys.channel_mix(params["bands"], params["as_of"]),
            "attribution": lambda: journeys.attribution(**params),
        }
        try:
            return calls[kind]()
        except JourneyQueryError as exc:
            raise ClientError(str(exc)) from None

    def rebuild_identity(self) -> dict[str, Any]:
        from touchpoints.identity.rebuild import rebuild

        return asdict(rebuild(self.tp.identity))


class RemoteClient:
    """Talks to the running server's API with its control token."""

    remote = True

    def __init__(self, settings: Settings, info: dict[str, Any]) -> None:
        self.pid = info["pid"]
        self._http = httpx.Client(
            base_url=info["url"],
            headers={"Authorization": f"Bearer {info['token']}"},
            timeout=60,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(
                f"the server (pid {self.pid}) did not answer at {self._http.base_url}: {exc}"
            ) from None
        if response.status_code == 404 and method == "GET":
            return None
        if response.status_code >= 400:
            try:
                detail = response.json()
                detail = detail.get("detail") or detail.get("error") or detail
            except ValueError:
                detail = response.text
            raise ClientError(f"the server refused: {detail}")
        return response.json()

    @staticmethod
    def _params(flt: EventFilter) -> dict[str, Any]:
        params = {k: v for k, v in vars(flt).items() if v is not None}
        for key in ("since", "until"):
            if key in params:
                params[key] = params[key].isoformat()
        return params

    def count(self, flt: EventFilter) -> int:
        return int(self._call("GET", "/v1/events/count", params=self._params(flt))["count"])

    def list(self, flt: EventFilter, limit: int, newest_first: bool) -> list[dict[str, Any]]:
        params = {
            **self._params(flt),
            "limit": limit,
            "order": "newest" if newest_first else "oldest",
        }
        return self._call("GET", "/v1/events", params=params)["events"]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/v1/events/stats")

    def create_key(self, role: str, name: str | None) -> dict[str, Any]:
        return self._call("POST", "/v1/keys", json={"role": role, "name": name})

    def list_keys(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/keys")["keys"]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/keys/{key_id}")

    def quarantine_list(self, status: str | None, limit: int) -> tuple[int, list[dict]]:
        body = self._call(
            "GET", "/v1/quarantine", params={"status": status or "all", "limit": limit}
        )
        return body["count"], body["items"]

    def quarantine_get(self, item_id: int) -> dict[str, Any] | None:
        return self._call("GET", f"/v1/quarantine/{item_id}")

    def quarantine_replay(self, ids: list[int] | None) -> dict[str, int]:
        return self._call("POST", "/v1/quarantine/replay", json={"ids": ids})

    def quarantine_delete(self, item_id: int) -> bool:
        try:
            self._call("DELETE", f"/v1/quarantine/{item_id}")
        except ClientError:
            return False
        return True

    def import_chunk(self, messages: list[dict[str, Any]], rows: list[tuple]) -> int | None:
        body = orjson.dumps({"batch": messages})
        for _attempt in range(30):
            try:
                response = self._http.post(
                    "/v1/import", content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as exc:
                raise ClientError(f"the server (pid {self.pid}) did not answer: {exc}") from None
            if response.status_code == 429:
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code >= 400:
                raise ClientError(f"the server refused a chunk: {response.text[:500]}")
            return None
        raise ClientError("the server stayed busy (429) for 30 attempts; try again later")

    # -- profiles and identity -----------------------------------------------------------------
    def profile(self, key: str, history: bool = False) -> dict[str, Any] | None:
        return self._call(
            "GET", f"/v1/profiles/{quote(key, safe=':@+')}", params={"history": history}
        )

    def timeline(self, key: str, limit: int) -> list[dict[str, Any]] | None:
        body = self._call(
            "GET", f"/v1/profiles/{quote(key, safe=':@+')}/timeline", params={"limit": limit}
        )
        return None if body is None else body["events"]

    def search(self, trait: str, value: str, limit: int) -> list[str]:
        params = {"trait": trait, "value": value, "limit": limit}
        return self._call("GET", "/v1/profiles", params=params)["persons"]

    def unmerge(self, identifier: str, note: str) -> dict[str, Any]:
        return self._call(
            "POST", "/v1/identity/unmerge", json={"identifier": identifier, "note": note}
        )

    def match_identities(self) -> dict[str, Any]:
        return self._call("POST", "/v1/identity/match", timeout=3600)

    def match_pairs(self, status: str, limit: int, offset: int = 0) -> tuple[int, list[dict]]:
        params = {"status": status, "limit": limit, "offset": offset}
        body = self._call("GET", "/v1/identity/reviews", params=params)
        return body["count"], body["pairs"]

    def decide_pair(self, pair_id: int, accept: bool, note: str) -> dict[str, Any]:
        decision = {"decision": "accept" if accept else "reject", "note": note}
        return self._call("POST", f"/v1/identity/reviews/{pair_id}", json=decision)

    def links(self, limit: int, offset: int, removed: bool) -> tuple[int, list[dict]]:
        params = {"limit": limit, "offset": offset, "removed": removed}
        body = self._call("GET", "/v1/identity/links", params=params)
        return body["count"], body["links"]

    def remove_link(self, link_id: int, note: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/identity/links/{link_id}/remove", json={"note": note})

    def journey_stages(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/journeys/stages", timeout=600)["stages"]

    def stage_history(self, key: str) -> dict[str, Any] | None:
        return self._call("GET", f"/v1/journeys/stages/{quote(key, safe=':@+')}", timeout=600)

    def journey_query(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        long = {"timeout": 3600}
        if kind == "map":
            query = {k: v for k, v in params.items() if v is not None}
            return self._call("GET", "/v1/journeys/map", params=query, **long)
        if kind == "funnel":
            body = {**params["spec"], "compare_units": params.get("compare_units", False)}
            return self._call("POST", "/v1/journeys/funnels", json=body, **long)
        if kind == "drop_offs":
            query = {k: params[k] for k in ("step", "limit", "offset") if k in params}
            return self._call(
                "POST", "/v1/journeys/funnels/drop-offs", json=params["spec"], params=query, **long
            )
        if kind == "retention":
            return self._call("POST", "/v1/journeys/retention", json=params["spec"], **long)
        path = {
            "paths": "/v1/journeys/paths",
            "variants": "/v1/journeys/variants",
            "channel_mix": "/v1/journeys/channel-mix",
            "attribution": "/v1/journeys/attribution",
        }[kind]
        query = {
            k: v.isoformat() if isinstance(v, date) else v
            for k, v in params.items()
            if v is not None
        }
        if kind == "paths" and "collapse_repeats" in query:
            query["collapse"] = query.pop("collapse_repeats")
        return self._call("GET", path, params=query, **long)

    def rebuild_identity(self) -> dict[str, Any]:
        return self._call("POST", "/v1/identity/rebuild", timeout=3600)


Client = LocalClient | RemoteClient


def connect(settings: Settings) -> Client:
    info = running_server(settings)
    if info is not None:
        return RemoteClient(settings, info)
    return LocalClient(settings)
