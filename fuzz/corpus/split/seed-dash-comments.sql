-- header; still header
SELECT 1 -- trailing; comment
;
SELECT 2 - -1; SELECT 3-- x
;--
--