"""The dashboard: pages at ``/`` over the same functions as the API (see ``app.py``)."""
