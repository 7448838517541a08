"""The dashboard's pages, one module each. A page module has:

- ``ORDER``: its place in the navigation (lower first);
- ``NAV``: ``((path, label), …)``, the navigation entries it adds (may be empty);
- ``PERMISSION``: what a session needs to see its navigation entries (``analytics``,
  ``profiles``, ``admin``, ``audit``, …: :mod:`touchpoints.access.roles`; without it, only
  admins see them);
- ``routes(dashboard) -> list[Route]``: its routes, each handler wrapped in
  ``dashboard.page(handler, permission)`` (a session without the permission gets 403),
  rendering with ``dashboard.render(request, template, session, **context)``.

Handlers read through the same functions as the API (``dashboard.tp.…``), run blocking calls
with ``starlette.concurrency.run_in_threadpool``, offer each chart's ``Table`` as CSV with
``csv_response``, check ``dashboard.csrf_ok`` on every form post (read with
``touchpoints.web.forms.form_fields``, bounded in size), and record in the audit log what
shows a person or changes something (``await dashboard.audit(request, session.actor.id,
action, target)``).

Every page is bilingual from the start (docs/translating.md): a template writes its texts as
``{{ _("Show") }}`` (``{{ _("%(n)s people", n=…) }}``, ``{% trans %}`` for texts with markup)
and its numbers and dates with the filters ``number``, ``percent``, ``date``, ``moment``; a
module marks ``NAV`` labels and other constants with ``N_`` and makes its texts with
``language = dashboard.language(request)``: ``_ = language.gettext`` for table titles, column
headings and series names, ``labels.channel(language, name)`` for the names touchpoints gives,
and ``app.FormError`` (an :class:`~touchpoints.web.i18n.Explained`) for its own form
messages. Table cells stay values (a ``date``, a count, ``Shown(name, label)``): the page
writes them in its language, the CSV as a program reads them.
"""
