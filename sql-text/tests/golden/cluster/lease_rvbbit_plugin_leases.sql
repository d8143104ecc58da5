CREATE TABLE IF NOT EXISTS _rvbbit_plugin_leases ON CLUSTER 'rvbbit_cluster'
(
    plugin      LowCardinality(String),
    token       String,
    host        String,
    pid         UInt32,
    acquired_at DateTime64(6),
    expires_at  DateTime64(6),
    released    UInt8,
    updated_at  DateTime64(6) DEFAULT now64(6)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/_rvbbit_plugin_leases', '{replica}', updated_at)
ORDER BY (plugin, token)
TTL toDateTime(updated_at) + INTERVAL 30 DAY;
