"""Read-only figures from people's sessions: summaries, roster statistics and what follows.

Two layers: SQL computes sufficient statistics per group (counts, sums, sums of squares and
cross-products), and the pure functions of `figures` publish them (means, rates, slopes,
trends). `periods` and `local_dates` are the period and local-date rules they share.
Nothing here knows HTTP or writes to the database: routes and reports call in.
"""
