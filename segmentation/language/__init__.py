"""Understanding questions: words -> a `segmentation.query.Query`, in the data's own vocabulary.

- `text`: tokens, stems, stop words.
- `lexicon`: the grammar's words (measures, directions, grouping, tiers...): plain English,
  never the data's values.
- `countries`: country names, codes and adjectives (pycountry, countryinfo).
- `vocabulary`: the run's segments and features and the users' attribute values, matched
  with rapidfuzz; the one place that resolves the data's words.
- `dates`: signup-date expressions ("this year", "in March 2026", "in the last 30 days").
- `shapes`: the words the training data uses to shape questions.
- `parse`: a question (with the NLU intent and the previous query) -> an `Understanding`.
"""
