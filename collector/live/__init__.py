"""Live metrics: what is happening now (meetings in progress, VPN users, print today).

Each configured source with ``live = true`` gets a reader (``readers.py`` picks it by
kind) polled on its own thread every ``live_interval`` seconds (``poller.py``). Every
poll's result goes into one snapshot file written atomically (``snapshot.py``), which
the exporter reads like any other input: a scrape never waits on a source, and a poll
that fails keeps the last good values, marked stale. Readers of log files reuse the
adapters' own line parsers; only counts leave a reader, never a name.
"""
