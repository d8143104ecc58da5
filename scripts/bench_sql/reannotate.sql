-- Later markings of a fifth of the traces generate_annotations.sql marked: a second
-- row per trace, one day after the first, which replaces it. A third of them
-- change `trainable`, all change `confidence`, and one in four clears it to NULL
-- ("not assessed"), the case where a plain argMax over confidence would wrongly keep
-- the older value. Run after generate_annotations.sql, once.
INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by)
WITH cityHash64(trace_id, 'annotation') AS h, cityHash64(trace_id, 'again') AS g
SELECT
    trace_id,
    if(g % 3 = 0, NOT (intDiv(h, 100) % 10 < 8), intDiv(h, 100) % 10 < 8) AS trainable,
    true AS verified,
    if(intDiv(g, 3) % 4 = 0, NULL, toFloat32(0.5 + intDiv(g, 12) % 501 / 1000)) AS confidence,
    're-assessed' AS notes,
    ['reviewed'] AS tags,
    timestamp + toIntervalMinute(5 + intDiv(h, 10000000000) % 1440) + toIntervalDay(1) AS annotated_at,
    'dara' AS annotated_by
FROM unified_logs
WHERE ((role = 'assistant' AND ifNull(cascade_id, '') != '' AND h % 100 = 0)
       OR (role != 'assistant' AND h % 5000 = 0))
  AND intDiv(g, 1000) % 5 = 0
