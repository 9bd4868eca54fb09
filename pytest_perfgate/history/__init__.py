"""The run history: what happened to every measurement, run after run.

Baseline files say what a run is compared with; the history records every gated run, A/B run
and refresh (from the plugin or from results files), so that trends, change points, budgets
and forecasts can be computed over it, and a dashboard and a brief rendered from it.

Layout:
- ``model``: the recorded values (runs, measurements, per-measurement series); plain data.
- ``store``: SQLite by default, PostgreSQL by URL; schema versioned, migrations.
- ``changepoints``, ``forecast``: pure functions over series.
- ``dashboard``, ``brief``: renderers.

Nothing here imports pytest, and nothing heavy is imported until used.
"""
