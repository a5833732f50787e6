"""Evidence reports (HTML, Markdown, PDF) and the coverage matrix, computed from run records.

Everything a report shows comes from `evidence.json` files and the project's own inventory
(scenarios, rules, metric contract, dashboards); nothing is computed from a claim.
"""
