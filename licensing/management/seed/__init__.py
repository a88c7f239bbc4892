"""The pieces of ``manage.py seed_demo``: the demo's world drawn as plain data (``world``),
written with its history in time order (``history``), the stories told through the real
services (``stories``) and the snapshot a license server sends last (``snapshot``)."""
