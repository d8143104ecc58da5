ALTER TABLE training_trainable_examples ON CLUSTER 'rvbbit_cluster' MODIFY SETTING min_bytes_for_wide_part = 10485760;

OPTIMIZE TABLE training_trainable_examples ON CLUSTER 'rvbbit_cluster' FINAL;
