-- The confidence worker's scores for the log rows generate_logs.sql just wrote (same
-- parameters {first:UInt64}, {count:UInt64}, {months:UInt8}, same row formulas): rvbbit
-- scores EVERY assistant message after its run (confidence_worker.py,
-- assess_training_confidence), one row per message: trainable and verified false, the
-- score (0..1), 'Auto-assessed', no tags, 'confidence_worker'. Its annotated_at is 6 to
-- 60 s after the log row: the worker waits for the late cost update (3-5 s after the
-- row), then runs one scoring cascade per message. Run right after the log INSERT of
-- the same rows (the rows' timestamps count back from now(), so the recomputed
-- timestamp is that of the log row plus the seconds in between).
-- One INSERT per generated chunk of logs (two thirds of the chunk's rows): batches,
-- never one huge insert, as the worker's traffic is many small ones.
INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by)
WITH
    intDiv(number, 6) AS session,
    number % 6 AS step,
    now64(6) - toIntervalMicrosecond(cityHash64(session, 2) % (toUInt64({months:UInt8}) * 30 * 86400 * 1000000))
        + toIntervalMillisecond(step * 2500 + cityHash64(number, 6) % 2000) AS ts
SELECT
    concat('trace-', lower(hex(cityHash64(number, 17)))) AS trace_id,
    false AS trainable,
    false AS verified,
    -- scores as the scoring cascade returns them: two decimals, mostly 0.5-1.0
    toFloat32(if(cityHash64(number, 30) % 10 = 0, cityHash64(number, 31) % 51, 50 + cityHash64(number, 31) % 51) / 100) AS confidence,
    'Auto-assessed' AS notes,
    [] AS tags,
    ts + toIntervalMillisecond(6000 + cityHash64(number, 32) % 54000) AS annotated_at,
    'confidence_worker' AS annotated_by
FROM numbers({first:UInt64}, {count:UInt64})
WHERE step IN (1, 2, 4, 5)
