"""Privacy: what touchpoints holds about a person, and the person's rights over it (consent,
access and portability, erasure, suppression, retention). Above the parts in the layers:
subject rights reach every store (the registry of personal data, warehouse/personal.py)."""
