-- Studio's markings (POST /api/training/mark-trainable -> mark_as_trainable): about 3%
-- of the examples (assistant replies inside a cascade) marked trainable, by a person
-- ('human'), each some time after the worker scored it (1 minute to 2 days later, never
-- in the future). mark_as_trainable sends one INSERT per trace and then
-- `OPTIMIZE TABLE training_annotations FINAL`; scripts/bench sends one INSERT per
-- month of logs ({older:UInt32} to {newer:UInt32} days ago; older 0 = no lower bound)
-- and the OPTIMIZE after it.
-- Values as Studio's callers send them: the grid's bulk marking (confidence 1.0, the
-- default when none is given, verified false) for most; Hot or Not's HOT (verified true,
-- confidence 1.0, 'Marked via Hot or Not') for 15%; a given confidence (0.95, 0.9 or
-- 0.7, tagged) for 15%, so that `confidence >= 0.8` leaves some out.
-- (The selected names differ from the columns: a SELECT alias named like a column would
-- replace that column in WHERE. INSERT maps the columns by position.)
INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by)
WITH cityHash64(trace_id, 'mark') AS h, intDiv(h, 1000) % 20 AS kind
SELECT
    trace_id,
    true AS new_trainable,
    kind < 3 AS new_verified,
    toFloat32(multiIf(kind = 3, 0.95, kind = 4, 0.9, kind = 5, 0.7, 1.0)) AS new_confidence,
    if(kind < 3, 'Marked via Hot or Not', '') AS new_notes,
    if(kind BETWEEN 3 AND 5, ['gold'], []) AS new_tags,
    least(annotated_at + toIntervalSecond(60 + intDiv(h, 100000) % 172800),
          greatest(annotated_at + toIntervalMillisecond(1), now64(3) - toIntervalSecond(20))) AS new_annotated_at,
    'human' AS new_annotated_by
FROM training_annotations
WHERE annotated_by = 'confidence_worker'
  AND h % 1000 < 30
  AND trace_id IN (
    SELECT trace_id FROM unified_logs
    WHERE role = 'assistant' AND ifNull(cascade_id, '') != ''
      AND timestamp < now64(6) - toIntervalDay({newer:UInt32})
      AND ({older:UInt32} = 0 OR timestamp >= now64(6) - toIntervalDay({older:UInt32})))
