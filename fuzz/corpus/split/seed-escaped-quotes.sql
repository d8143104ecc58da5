SELECT 'it''s; fine', 'back\'slash;', "dq""x;", `bt``y;`, '\\';
SELECT 'a\\' ; SELECT ''''