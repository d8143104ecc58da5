#!/usr/bin/clickhouse-local --queries-file
# a comment; not a statement
SELECT #notacomment;
SELECT 1 # trailing; comment
, 2;#!x;
