"""The label-agreement gate: do the annotators agree well enough for their labels to be trusted?

The headline figure is chance-corrected agreement:

- **two annotators**: Cohen's kappa on the items both labelled; with `weights` set to `linear` or
  `quadratic`, Cohen's weighted kappa for ordinal labels (method `cohen_linear` / `cohen_quadratic`);
- **three or more annotators**: Fleiss' kappa (method `fleiss`, always nominal: `weights` then applies
  only to the pairwise Cohen figures).

Beside it, `per_pair` gives Cohen's kappa (weighted as configured) for every pair of annotators that
share at least `min_pair_items` items, and `mean_pairwise_cohen` their mean (undefined pairs left out).
The gate fails when kappa < `min_kappa`, and when kappa is undefined (`kappa: null` with an
`undefined_reason`: no item with two labels, or one label everywhere so that chance agreement is 1);
it never reports NaN.

Definitions, so the numbers can be checked by hand:

- Labels, items and annotators are compared as text after stripping (`1` and `"1"` are one label; a
  whole float such as `1.0` from a Parquet column reads as `1`; other spellings such as `"1.0"` stay
  distinct labels). An empty or missing label is a missing annotation and is skipped.
- Items with fewer than two labels are skipped and counted (`skipped_items`).
- Cohen (weighted or not): kappa = 1 - sum(W * O) / sum(W * E), O the observed label-by-label counts,
  E = outer(row sums, column sums) / n, W = 0 on the diagonal and 1 elsewhere (unweighted), or
  |x - y| (linear) or (x - y)^2 (quadratic) for the labels' numeric values x, y. The distance uses the
  values themselves, so a 1-5 scale on which nobody chose 3 still puts 2 and 4 two steps apart. This
  equals `sklearn.metrics.cohen_kappa_score` whenever the labels are consecutive integers that all occur
  (or sklearn is given the full scale through `labels=`); sklearn itself measures the distance in
  positions among the labels that occur.
- Fleiss with a varying number of raters per item uses the standard generalisation for missing
  ratings (Gwet, *Handbook of Inter-Rater Reliability*, 4th ed., ch. 2; R package irrCAC,
  `fleiss.kappa.raw`): over the items with r_i >= 2 labels, P_o = mean_i sum_k n_ik (n_ik - 1) /
  (r_i (r_i - 1)), pi_k = mean_i n_ik / r_i, P_e = sum_k pi_k^2, kappa = (P_o - P_e) / (1 - P_e).
  With the same number of raters on every item this is exactly Fleiss (1971), as in
  `statsmodels.stats.inter_rater.fleiss_kappa`; no item is dropped for having fewer raters than others.
- `confusion[i][j]` counts the items on which one annotator chose `labels[i]` and another `labels[j]`;
  for two annotators the rows are the annotator first in name order and the columns the other; for
  more, it is pooled over every pair of annotators on every item, each pair ordered by name.
- `labels` are sorted numerically when all of them are numbers, else as text.

Several labels from one annotator for one item (a repeated row in the long format, a comma-joined cell
such as `"1, 1"` or `"0, 1"` or a JSON list in the wide format) are handled by `multiple_labels`:
`error` (the default) stops with a `DataError` naming the file, line and field or column;
`first` keeps the first label; `majority` keeps the most frequent one (a tie goes to the earliest).
In the wide format a comma always separates labels, so labels themselves cannot contain commas there.

The package, one concern a module:

- `config`    AgreementGateConfig (`checks.agreement`), AgreementResult, the Judgement triple;
- `rules`     the rules every judgement obeys, each stated once (comparable text, missing values, one
              value per cell, numeric labels under `weights`, one label per annotator and item);
- `reading`   JudgementReader / judgements_from_records: long and wide files, each row checked against
              the rules, errors naming file, line and field; what it returns is not checked again;
- `grouping`  labels by item and annotator, one kept per annotator and item;
- `kappa`     Cohen's (weighted) and Fleiss' kappa, pure functions on count arrays;
- `gate`      compute_agreement: judgements in, AgreementResult out.
"""

from data_checks.agreement.config import MULTIPLE_LABELS, WEIGHTS, AgreementGateConfig, AgreementResult, Judgement
from data_checks.agreement.gate import compute_agreement
from data_checks.agreement.reading import JudgementReader, judgements_from_records

__all__ = ["MULTIPLE_LABELS", "WEIGHTS", "AgreementGateConfig", "AgreementResult", "Judgement", "JudgementReader",
           "compute_agreement", "judgements_from_records"]
