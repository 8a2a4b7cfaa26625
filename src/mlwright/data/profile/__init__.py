"""Profile a table: what each column holds, facts about the table, and what to watch out for.

``profile(df, target="churn")`` returns a :class:`Profile`: per column its kind (from
:func:`mlwright.data.kinds.infer_kind`, the one source of kinds), dtype, missingness, distinct
count, quantiles, top values and chart data; table facts (rows, duplicates, memory, the
target's distribution and task); and :class:`ProfileWarning` objects for target leakage,
identifiers, constants, heavy missingness, datetimes, free text and personal data.

Exact counts (missing, distinct, quantiles, top values) are cheap and use every row. The
expensive checks run on fixed-seed samples: leakage on 10,000 rows, personal data on 2,000
values per column, text statistics on 10,000 values.

Modules: ``result`` (Profile and its parts; JSON), ``columns`` (statistics), ``checks``
(warnings), ``build`` (profile()), ``page`` (the HTML page).
"""

from mlwright.data.profile.build import profile
from mlwright.data.profile.result import ColumnProfile, Profile, ProfileWarning, Severity

__all__ = ["ColumnProfile", "Profile", "ProfileWarning", "Severity", "profile"]
