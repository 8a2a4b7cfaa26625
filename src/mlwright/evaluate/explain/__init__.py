"""Explanations in the user's own columns: local (``mw.explain``) and global.

**Local.** ``explain(model, rows)`` gives, for every row, one contribution per *original*
column (one-hot, ordinal, date-part and text-score features are summed back to the column
they came from through ``TablePrep.feature_origin_``), a base value and the model's output,
with ``base + sum(contributions) == output``.

**How the ensemble is made additive.** The ensemble averages its members' *probabilities*
(values, for regression), while tree SHAP values are additive in each member's raw space
(log-odds / softmax logits / the member's own target scale). Each member ``m`` is explained
exactly in its raw space (see :mod:`mlwright.evaluate.explain.contributions`), giving ``phi_m`` with
``raw_m(x) = raw_base_m + sum(phi_m)``. Its contributions are then moved to the output space
with the DeepLIFT "rescale" rule::

    phi_m_out = phi_m * (p_m(x) - p_m(base)) / (raw_m(x) - raw_base_m)
    p_m(base) = link(raw_base_m)

and weighted by the member's ensemble weight. The ensemble's base is ``sum_m w_m p_m(base)``
and ``base + sum(phi_out) == sum_m w_m p_m(x)``, the ensemble's output, exactly. When
``raw_m(x) == raw_base_m`` (to 1e-10) the ratio is the link's derivative at ``x`` (the limit);
for one class of a multiclass member whose own logit did not move while others did, the
change in that class's probability is spread over the columns in proportion to
``sum_k (raw_k(x) - raw_base_k) * phi_k`` (the least-norm solution), which stays additive.
Binary models are explained for the positive (second) class, multiclass models for every
class (a class axis). ``output="raw"`` explains a one-member model in its raw space.

**Global.** ``global_explanation(model, X, y)`` gives mean |contribution| per column,
permutation importance of the original columns scored with the model's metric, dependence
data for the top columns and, for text columns, the n-grams that weigh most.

Modules: ``local`` (explain, explain_members), ``global_`` (global_explanation),
``reference`` (attach_reference), ``contributions`` (each member's exact contributions).
"""

from mlwright.evaluate.explain.global_ import GlobalExplanation, global_explanation
from mlwright.evaluate.explain.local import LocalExplanation, explain, explain_members
from mlwright.evaluate.explain.reference import attach_reference

__all__ = ["GlobalExplanation", "LocalExplanation", "attach_reference", "explain",
           "explain_members", "global_explanation"]
