-- Universal training system, version 7: the trainable copy in wide parts.
--
-- Studio's grid reads the joined view `training_examples_with_annotations`, newest 100
-- first. The view's second half (the state table, sorted by time) stops after the newest
-- rows; its first half, the trainable copy `training_trainable_examples`, is sorted for
-- rvbbit's retrieval (cascade, cell, trace), so the grid reads every trainable row of it,
-- texts included: through the view's UNION ALL the engine does not defer the texts to
-- the rows it returns. Version 3 stored that copy in compact parts (one file, every
-- column's granule of 64 rows compressed on its own) for retrieval's few small reads;
-- read whole, those parts cost about 40% more than wide ones (a file per column).
--
-- Measured on the benchmark's 1M log rows (docs/PERFORMANCE.md, "The trainable copy in
-- wide parts"), merged: the copy's half of the grid alone 71 ms compact, 43 ms wide; the
-- grid through the view 80-93 ms against 60-74 ms; rvbbit's retrieval 13.5 against
-- 14.7 ms.
--
-- From 10 MiB on (ClickHouse's own default), parts are wide; the small parts Studio's
-- markings write stay compact. The copy is rewritten once here, so an upgraded install
-- does not wait for its next merge.

-- 1. Wide parts from 10 MiB on.
ALTER TABLE training_trainable_examples MODIFY SETTING min_bytes_for_wide_part = 10485760;

-- 2. The rows there are, rewritten in one part under the new setting (a copy of the
--    trainable examples only: at 10M log rows about 190,000 rows).
OPTIMIZE TABLE training_trainable_examples FINAL;
