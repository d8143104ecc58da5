CREATE TABLE IF NOT EXISTS _rvbbit_plugin_migrations ON CLUSTER 'rvbbit_cluster'
(
    plugin           LowCardinality(String),
    version          UInt32,
    name             String,
    checksum         String,
    statements_done  UInt32,
    statements_total UInt32,
    status           LowCardinality(String),
    host             String,
    pid              UInt32,
    started_at       DateTime64(6),
    finished_at      Nullable(DateTime64(6)),
    duration_ms      UInt64,
    error            String,
    note             String,
    updated_at       DateTime64(6) DEFAULT now64(6)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/_rvbbit_plugin_migrations', '{replica}', updated_at)
ORDER BY (plugin, version);
