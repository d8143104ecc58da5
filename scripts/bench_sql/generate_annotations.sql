-- Studio's markings of the logs written by generate_logs.sql: about 1% of the
-- examples (assistant replies inside a cascade), plus a few traces that are not
-- examples at all (a user or system row marked by mistake), which no view may show.
-- Run once, before or after `migrate`. Deterministic for a given log.
--
-- 80% trainable, 40% verified; confidence NULL ("not assessed") for one in ten, else
-- spread over 0.50-1.00 (so `min_confidence 0.8` keeps a bit more than a third);
-- notes and tags for some; by a person, or by the automatic scorer.
INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by)
WITH cityHash64(trace_id, 'annotation') AS h
SELECT
    trace_id,
    intDiv(h, 100) % 10 < 8 AS trainable,
    intDiv(h, 1000) % 10 < 4 AS verified,
    if(intDiv(h, 10000) % 10 = 0, NULL, toFloat32(0.5 + intDiv(h, 100000) % 501 / 1000)) AS confidence,
    ['', '', '', 'clean answer', 'good tone, keep', 'format is right', 'borderline: check the numbers'][1 + intDiv(h, 100000000) % 7] AS notes,
    [[], [], ['gold'], ['format'], ['gold', 'tone'], ['edge-case']][1 + intDiv(h, 1000000000) % 6] AS tags,
    timestamp + toIntervalMinute(5 + intDiv(h, 10000000000) % 1440) AS annotated_at,
    ['ana', 'ben', 'chen', 'auto-scorer', 'auto-scorer'][1 + intDiv(h, 10000000000000) % 5] AS annotated_by
FROM unified_logs
WHERE (role = 'assistant' AND ifNull(cascade_id, '') != '' AND h % 100 = 0)
   OR (role != 'assistant' AND h % 5000 = 0)
