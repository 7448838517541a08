"""The dashboard's pages, one module each. A page module has:

- ``ORDER``: its place in the navigation (lower first);
- ``NAV``: ``((path, label), …)``, the navigation entries it adds (may be empty);
- ``routes(dashboard) -> list[Route]``: its routes, each handler wrapped in
  ``dashboard.page(handler)`` (``admin=True`` for admin-only pages), rendering with
  ``dashboard.render(request, template, session, **context)``.

Handlers read through the same functions as the API (``dashboard.tp.…``), run blocking calls
with ``starlette.concurrency.run_in_threadpool``, offer each chart's ``Table`` as CSV with
``csv_response`` and check ``dashboard.csrf_ok`` on every form post.
"""
