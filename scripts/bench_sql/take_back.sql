-- A tenth of Studio's trainable markings taken back later (the grid's toggle or Hot or
-- Not's NOT: mark_as_trainable with trainable false, so verified false and confidence
-- 1.0, the default), a day after the marking or just now, whichever is earlier (never
-- before the marking). scripts/bench sends `OPTIMIZE TABLE training_annotations FINAL`
-- after it, as mark_as_trainable does.
-- (The selected names differ from the columns: a SELECT alias named like a column would
-- replace that column in WHERE. INSERT maps the columns by position.)
INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by)
SELECT
    trace_id,
    false AS new_trainable,
    false AS new_verified,
    toFloat32(1.0) AS new_confidence,
    '' AS new_notes,
    [] AS new_tags,
    least(annotated_at + toIntervalDay(1), greatest(annotated_at + toIntervalMillisecond(1), now64(3) - toIntervalSecond(10))) AS new_annotated_at,
    'human' AS new_annotated_by
FROM training_annotations FINAL
WHERE annotated_by = 'human' AND trainable AND cityHash64(trace_id, 'back') % 10 = 0
