INSERT INTO t FORMAT Values ('a;b', $$x;y$$);
SELECT x'3B', b'0011'