SELECT 'héllo; 🐇' AS `ключ;`; -- комментарий; ☃
SELECT '中文;' /* 😀; */ ;
﻿SELECT 1